'use strict';
// How bench/run.js measures: rounds and their length, load generators (h2load when present, else
// Node), microbenchmarks, server CPU from /proc, and figures as a ratio to a baseline measured in
// the same rounds (ABBA), since only ratios within one run mean anything on a shared machine.
const { spawnSync, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { create, toBinary } = require('@bufbuild/protobuf');
const { nodeLoad: nodeLoadFor } = require('./service.js');

const ROOT = path.join(__dirname, '..', '..');
/** A module of the built service (dist/). */
const dist = (p) => require(path.join(ROOT, 'dist', p));

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
/** The median; for an even count, the mean of the two middle values (never the kinder one of them). */
const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const spread = (xs) => [Math.min(...xs), Math.max(...xs)];

/** The nanoseconds each thread of a process has run (schedstat), by process (pid and start time) and thread id. */
const threadRuns = new Map();

/**
 * Server CPU seconds (user + system, every thread) from /proc: the sum of each thread's run time
 * in nanoseconds (/proc/<pid>/task/<tid>/schedstat), where the process's own counter
 * (/proc/<pid>/stat) counts in clock ticks of 10 ms: one tick either side of a Health/Check
 * measurement of 4,096 calls is ±2.4 µs a call, a twentieth of the floor server's. A thread that
 * ends keeps its last reading, so it loses what it ran after it (Node's threads live as long as the
 * process). Without schedstat, the clock ticks. Throws once the process is gone.
 */
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // A pid used again by a later process starts afresh: the start time (field 22) tells them apart.
  const key = `${pid}:${fields[19]}`;
  let runs = threadRuns.get(key);
  if (!runs) threadRuns.set(key, (runs = new Map()));
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      runs.set(tid, Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch (err) {
      if (err.code !== 'ENOENT' && err.code !== 'ESRCH') throw err; // the thread ended meanwhile, or no schedstat
    }
  }
  if (runs.size > 0) {
    let ns = 0;
    for (const run of runs.values()) ns += run;
    return ns / 1e9;
  }
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks (USER_HZ = 100 on Linux)
}

/** One length-prefixed gRPC message, as h2load sends it. */
function grpcFrame(schema, init) {
  const body = Buffer.from(toBinary(schema, create(schema, init)));
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return frame;
}

const h2loadAvailable = spawnSync('h2load', ['--version']).status === 0;

/** h2load: unary gRPC calls over several connections and streams; returns calls/s. */
function h2load(port, pathName, frame, headers = {}) {
  const file = path.join(os.tmpdir(), `bench-${crypto.randomBytes(4).toString('hex')}.bin`);
  fs.writeFileSync(file, frame);
  const args = ['-D', `${Math.round(SECONDS * 500)}ms`, '-c', '8', '-m', '16', '-t', '1', '-d', file, '-H', 'content-type: application/grpc', '-H', 'te: trailers'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(`http://127.0.0.1:${port}${pathName}`);
  const out = execFileSync('h2load', args, { encoding: 'utf8' });
  fs.unlinkSync(file);
  const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  const failed = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  if (!rate) throw new Error(`h2load output not understood:\n${out}`);
  if (failed && Number(failed[2]) > 0) throw new Error(`h2load: ${failed[2]} requests failed`);
  return Number(rate[1]);
}

/** The Node load generator, `seconds` defaulting to BENCH_SECONDS. */
const nodeLoad = (call, options = {}) => nodeLoadFor(call, { seconds: SECONDS, ...options });

/** Calls/s of a unary call for half a round: h2load on a raw path and frame, or the Node generator. */
const viaH2 = (port, p, frame, headers) => async () => h2load(port, p, frame, headers);
const viaNode = (fn) => async () => (await nodeLoad(fn, { seconds: SECONDS / 2 })).perSecond;

/** Median microseconds of `fn` over many runs. */
function microbench(fn, iterations = 2000) {
  const runs = [];
  for (let r = 0; r < 7; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn(i);
    runs.push(Number(process.hrtime.bigint() - t0) / 1e3 / iterations);
  }
  return median(runs);
}

/**
 * A calls/s figure as a ratio to a baseline: twice the rounds at half the length, in the order
 * ABBA, so that the machine's drift (other tenants come and go) weighs on baseline and figure alike.
 */
async function ratioFigure(results, name, target, measure, baseline) {
  const ratios = [];
  const values = [];
  const bases = [];
  for (let r = 0; r < 2 * ROUNDS; r++) {
    let b;
    let v;
    if (r % 2 === 0) {
      b = await baseline();
      v = await measure();
    } else {
      v = await measure();
      b = await baseline();
    }
    bases.push(b);
    values.push(v);
    ratios.push(v / b);
  }
  results.figures.push({ name, unit: 'calls/s', value: median(values), baseline: median(bases), ratio: median(ratios), spread: spread(ratios), target, met: median(ratios) >= target });
}

/** Server CPU µs per call over `count` calls of `call` (the Node generator). */
async function cpuPerCall(server, count, call) {
  const before = cpuSeconds(server.pid);
  const { calls } = await nodeLoad(call, { count, seconds: 120 });
  return ((cpuSeconds(server.pid) - before) / calls) * 1e6;
}

/** Median milliseconds of one ListUsers page of 1,000 from a random place among `users` (named user0000000…). */
async function listUsersPageMs(store, users) {
  const runs = [];
  // 50 pages first, not timed: the first store measured would otherwise pay for the compiler's
  // warm-up (its pages took 0.16 ms cold against 0.017 ms warm on the memory store). Then 201,
  // a page being well under a millisecond there.
  for (let r = 0; r < 251; r++) {
    const after = `user${String(Math.floor(Math.random() * (users - 2000))).padStart(7, '0')}`;
    const t0 = process.hrtime.bigint();
    const page = await store.listUsers({ prefix: '', after, limit: 1000 });
    if (r >= 50) runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (page.length !== 1000) throw new Error('short page');
  }
  return median(runs);
}

/** A random id of the service's shape, and a random argon2id PHC string (for filling stores). */
const randomId = (prefix) => `${prefix}_${crypto.randomBytes(16).toString('base64url')}`;
const randomPhc = () => `$argon2id$v=19$m=19456,t=2,p=1$${crypto.randomBytes(16).toString('base64').replace(/=+$/, '')}$${crypto.randomBytes(32).toString('base64').replace(/=+$/, '')}`;

module.exports = {
  ROOT,
  dist,
  ROUNDS,
  SECONDS,
  median,
  spread,
  cpuSeconds,
  grpcFrame,
  h2loadAvailable,
  h2load,
  nodeLoad,
  viaH2,
  viaNode,
  microbench,
  ratioFigure,
  cpuPerCall,
  listUsersPageMs,
  randomId,
  randomPhc,
};
