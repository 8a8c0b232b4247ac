'use strict';
// Helpers shared by bench/run.js and bench/profile.js.
const net = require('node:net');

const PASSWORD = 'correct horse battery staple';

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Waits until the service answers Health/Check (it is starting in another process). */
async function waitForHealth(health) {
  for (let i = 0; ; i++) {
    try {
      await health.check({ service: '' });
      return;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The Node load generator: `concurrency` loops calling `call(i)` for `seconds` (or `count` calls). */
async function nodeLoad(call, { concurrency = 32, count = Infinity, seconds = 3 } = {}) {
  let n = 0;
  const latencies = [];
  const end = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (n < count && Date.now() < end) {
        const i = n++;
        const s = process.hrtime.bigint();
        await call(i);
        latencies.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  latencies.sort((a, b) => a - b);
  return { calls: latencies.length, perSecond: latencies.length / elapsed, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0 };
}

module.exports = { PASSWORD, freePort, waitForHealth, nodeLoad };
