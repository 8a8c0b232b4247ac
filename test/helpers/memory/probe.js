// Runs the built service in this process (started with --expose-gc) and drives `rounds` of load
// at it from a child process, printing after each round the process's memory after a full GC.
// At the end, a heap snapshot tells how many strings still hold the load's marker. One JSON line.
const { execFile } = require('node:child_process');
const { getHeapSnapshot } = require('node:v8');
const { join } = require('node:path');
const { startTestAuthServer } = require('../../../dist/src/sdk/testing.js');
const { MemoryStore } = require('../../../dist/src/store/memory/memory-store.js');
const { ManualClock } = require('../../../dist/src/clock.js');
const { ARGON2ID_OWASP, Argon2Hasher } = require('../../../dist/src/core/password-hasher.js');
const { HASH_NICE } = require('../../../dist/src/core/hash-threads.js');

const [scenario, roundsArg, perRoundArg, concurrencyArg, marker, envJson] = process.argv.slice(2);
const [rounds, perRound, concurrency] = [Number(roundsArg), Number(perRoundArg), Number(concurrencyArg)];

const load = (address, from, count) =>
  new Promise((resolve, reject) =>
    execFile(process.execPath, [join(__dirname, 'load.js'), address, scenario, String(from), String(count), String(concurrency)], { maxBuffer: 1 << 20 }, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout).codes))),
  );

function memory() {
  global.gc();
  global.gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external };
}

/** Strings in the heap that contain `marker` (streamed, so the snapshot is never held whole). */
function retained() {
  return new Promise((resolve) => {
    let count = 0;
    let tail = '';
    const stream = getHeapSnapshot();
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      const text = tail + chunk;
      for (let i = text.indexOf(marker); i >= 0; i = text.indexOf(marker, i + 1)) count++;
      tail = text.slice(-marker.length + 1);
    });
    stream.on('end', () => resolve(count));
  });
}

/** Threads of this process at HASH_NICE over its own nice value: the low-priority hashing threads. */
function hashThreads() {
  const fs = require('node:fs');
  const nice = (tid) => {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    } catch {
      return undefined; // The thread ended between the listing and the read.
    }
  };
  const target = Math.min(19, nice(process.pid) + HASH_NICE);
  return fs.readdirSync('/proc/self/task').filter((tid) => nice(tid) === target).length;
}

(async () => {
  // PROBE_ATTEMPT_CAP: the memory store with a smaller cap on login-attempt counters than the
  // service's 100,000, so a test reaches it (and shows RSS level past it) in seconds.
  // PROBE_STORE: the same with the service's own cap, to read the store's counts at the end.
  // PROBE_HASHER: the service's own hasher (argon2id at its real cost, on its low-priority
  // threads) instead of the test kit's fast one on the libuv pool.
  const { PROBE_ATTEMPT_CAP, PROBE_STORE, PROBE_HASHER, ...env } = JSON.parse(envJson || '{}');
  const hasher = PROBE_HASHER ? new Argon2Hasher({ ...ARGON2ID_OWASP, concurrency: 2, maxQueue: 128, lowPriority: true }) : undefined;
  const clock = new ManualClock(Date.now());
  const store = PROBE_ATTEMPT_CAP || PROBE_STORE ? new MemoryStore({ clock, accessGraceMs: 930_000, maxSessionsPerUser: 100, maxAttemptEntries: Number(PROBE_ATTEMPT_CAP ?? 100_000) }) : undefined;
  const kit = await startTestAuthServer({ clock, logDestination: { write() {} }, env: { AUTH_LOG_LEVEL: 'info', ...env }, ...(store ? { store } : {}), ...(hasher ? { hasher } : {}) });
  const out = { warm: undefined, rounds: [], codes: {}, retained: 0 };
  await load(kit.address, 0, Math.min(perRound, 500));
  out.warm = memory();
  const baseline = await retained();
  for (let r = 1; r <= rounds; r++) {
    const codes = await load(kit.address, r * 1_000_000, perRound);
    for (const [code, n] of Object.entries(codes)) out.codes[code] = (out.codes[code] ?? 0) + n;
    out.rounds.push(memory());
  }
  // The heap snapshot must find what is there: three planted strings are counted, then dropped.
  // (Flat strings, as decoded requests are: a heap snapshot shows no text for a concatenation.)
  globalThis.planted = [1, 2, 3].map((n) => Buffer.from(`${marker}planted-${n}-${Math.random()}`).toString());
  out.planted = (await retained()) - baseline;
  delete globalThis.planted;
  out.retained = (await retained()) - baseline;
  out.state = { hashThreads: hasher ? hashThreads() : undefined, watching: kit.app.server.health.watching, attempts: store ? store.size().attempts : undefined, ceremonies: store ? store.size().ceremonies : undefined };
  await kit.close();
  await hasher?.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
})();
