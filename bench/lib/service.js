'use strict';
// The service under measurement: a free port, a started service with its clients, and the Node load generator (bench/run.js, bench/profile.js).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const dist = (p) => require(path.join(ROOT, 'dist', p));

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

/**
 * Starts the built service (dist/) in a child process on a free port with a fresh ES256 key and
 * the memory store, and resolves once it answers Health/Check, with a client for each service.
 * `nodeArgs(dir)` adds Node options (e.g. --cpu-prof into the run's own temporary `dir`).
 */
async function startService({ env = {}, nodeArgs = () => [] } = {}) {
  const { AuthService } = dist('gen/auth/v1/auth_pb.js');
  const { SecureService } = dist('gen/auth/v1/secure_pb.js');
  const { AccountService } = dist('gen/auth/v1/account_pb.js');
  const { AdminService } = dist('gen/auth/v1/admin_pb.js');
  const { Health } = dist('gen/grpc/health/v1/health_pb.js');
  const { createClient } = dist('src/grpc/client.js');
  const { generateEcPem, loadEcKeyFile } = dist('src/core/keys.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-bench-'));
  const keyFile = path.join(dir, 'key.pem');
  fs.writeFileSync(keyFile, generateEcPem());
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const serverEnv = { PATH: process.env.PATH, AUTH_ADDRESS: address, AUTH_SIGNING_KEY_FILE: keyFile, AUTH_HASH_CONCURRENCY: '2', ...env };
  const server = spawn(process.execPath, [...nodeArgs(dir), path.join(ROOT, 'dist/src/main.js')], {
    env: serverEnv,
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => server.on('exit', resolve));
  process.on('exit', () => server.kill('SIGKILL'));
  const service = {
    dir,
    port,
    server,
    exited,
    key: loadEcKeyFile(keyFile),
    /** Password hashes the service computes at once (AUTH_HASH_CONCURRENCY). */
    hashConcurrency: Number(serverEnv.AUTH_HASH_CONCURRENCY),
    auth: createClient(AuthService, address),
    secure: createClient(SecureService, address),
    health: createClient(Health, address),
    admin: createClient(AdminService, address),
    account: createClient(AccountService, address),
    /** Stops the service with SIGTERM (it drains and exits) and closes the clients. */
    async stop() {
      server.kill('SIGTERM');
      await exited;
      for (const client of [service.auth, service.secure, service.health, service.admin, service.account]) client.close();
      // The key file's directory, unless a --cpu-prof profile is still to be read from it (bench/profile.js).
      if (!fs.readdirSync(dir).some((f) => f.endsWith('.cpuprofile'))) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await waitForHealth(service.health);
  return service;
}

/** Resolves when `child` prints "listening"; fails if it exits first or takes over a minute. */
function listening(child, what) {
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within a minute: ${stderr}`)), 60_000);
    child.stdout.on('data', (d) => {
      if (String(d).includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${stderr}`));
    });
  });
}

/** Stops a child process and resolves when it has exited. */
function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  return exited;
}

module.exports = { PASSWORD, freePort, listening, stopChild, waitForHealth, nodeLoad, startService };
