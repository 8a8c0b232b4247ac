#!/usr/bin/env node
/* eslint-disable no-console */
// `npm run bench`: starts the service and measures each figure next to its baseline in the same
// run (machines here are shared and noisy, so only ratios within one run mean anything), then
// writes bench/results/latest.md and latest.json. Uses the built service in dist/.
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { create, toBinary } = require('@bufbuild/protobuf');
const jwt = require('jsonwebtoken');
const argon2 = require('@node-rs/argon2');
const { PASSWORD, nodeLoad: nodeLoadFor, startService } = require('./lib/service.js');

const ROOT = path.join(__dirname, '..');
const dist = (p) => require(path.join(ROOT, 'dist', p));
const { ValidateRequestSchema } = dist('gen/auth/v1/auth_pb.js');
const { SecureService } = dist('gen/auth/v1/secure_pb.js');
const { HealthCheckRequestSchema } = dist('gen/grpc/health/v1/health_pb.js');
const { MemoryStore } = dist('src/store/memory/memory-store.js');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => [Math.min(...xs), Math.max(...xs)];

/** Server CPU seconds (user + system) from /proc, for CPU-per-call figures. */
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks (USER_HZ = 100 on Linux)
}

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

async function main() {
  const hashConcurrency = 2;
  // An admin from a users file, to create the service account the IssueServiceToken figure uses.
  const usersFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-users-')), 'users');
  fs.writeFileSync(usersFile, `bench-admin:${await argon2.hash(PASSWORD, { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 })}:admin\n`);
  // Registration limits off: the Register flood below measures how hashing is shared, not the limits.
  const service = await startService({ env: { AUTH_HASH_CONCURRENCY: String(hashConcurrency), AUTH_USERS_FILE: usersFile, AUTH_REGISTER_PER_ADDRESS: '1000000', AUTH_REGISTER_PER_MINUTE: '1000000' } });
  const { key, port, server, auth, secure, health } = service;
  const results = { hashConcurrency, figures: [], floors: {}, generator: h2loadAvailable ? 'h2load (nghttp2) for calls/s figures; Node for CPU-per-call, latency and login figures' : 'Node (h2load not found)' };

  // --- raw floors, in this process ---------------------------------------------------------
  const pub = key.verifyKey;
  const signInput = Buffer.from('x'.repeat(300));
  const sig = crypto.sign('sha256', signInput, { key: key.signKey, dsaEncoding: 'ieee-p1363' });
  results.floors.es256VerifyUs = microbench(() => crypto.verify('sha256', signInput, { key: pub, dsaEncoding: 'ieee-p1363' }, sig));
  results.floors.es256SignUs = microbench(() => crypto.sign('sha256', signInput, { key: key.signKey, dsaEncoding: 'ieee-p1363' }));
  results.floors.sha256Us = microbench(() => crypto.createHash('sha256').update('rt1_' + 'a'.repeat(64)).digest());
  const hashRuns = [];
  for (let i = 0; i < 7; i++) {
    const t0 = process.hrtime.bigint();
    await argon2.hash(PASSWORD, { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    hashRuns.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  results.floors.argon2idMs = median(hashRuns);
  // Not a target's baseline, but what explains the Login figure: the hashing threads share the
  // machine's cores with each other, the service and the load generator.
  const parallelStart = process.hrtime.bigint();
  let parallelHashes = 0;
  await Promise.all(
    Array.from({ length: hashConcurrency }, async () => {
      while (Number(process.hrtime.bigint() - parallelStart) < SECONDS * 1e9) {
        await argon2.hash(PASSWORD, { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 });
        parallelHashes++;
      }
    }),
  );
  results.floors.argon2idParallelPerSecond = parallelHashes / (Number(process.hrtime.bigint() - parallelStart) / 1e9);

  // --- fixtures ------------------------------------------------------------------------------
  await auth.register({ username: 'bench', password: PASSWORD });
  // Logins in flight count against their account (5 at most before back-off), so the login
  // figures spread over 16 accounts, as many clients would.
  const accounts = Array.from({ length: 16 }, (_, i) => `bench${i}`);
  for (const username of accounts) await auth.register({ username, password: PASSWORD });
  const loginAny = (i) => auth.login({ username: accounts[i % accounts.length], password: PASSWORD });
  const login = await auth.login({ username: 'bench', password: PASSWORD });
  const token = login.accessToken;
  const sessionIds = [];
  const benchUserId = jwt.decode(token).sub;
  for (let i = 0; i < 20; i++) {
    const t = await auth.login({ username: 'bench', password: PASSWORD });
    sessionIds.push(jwt.decode(t.accessToken).sid);
  }
  // Signed as the service signs: low-S only (a high-S ES256 signature is refused as malformed).
  const { lowS } = dist('src/core/access-token.js');
  const mint = (i) =>
    lowS(jwt.sign(
      { iss: 'urn:grpc-auth:dev', aud: 'urn:grpc-auth:services', sub: benchUserId, username: 'bench', roles: [], sid: sessionIds[i % sessionIds.length], jti: `j${i}`, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 900 },
      key.signKey,
      { algorithm: 'ES256', keyid: key.kid, header: { alg: 'ES256', typ: 'at+jwt', kid: key.kid } },
    ));

  // What is measured must be the path it names: a minted token is active, the bench token too.
  for (const [name, t] of [['login', token], ['minted', mint(1e9)]]) {
    const answer = await auth.validate({ accessToken: t });
    if (!answer.active) throw new Error(`the ${name} benchmark token is not active: ${answer.reason}`);
  }
  const healthFrame = grpcFrame(HealthCheckRequestSchema, { service: '' });
  const validateFrame = grpcFrame(ValidateRequestSchema, { accessToken: token });
  const ratioFigure = async (name, target, measure, baseline) => {
    const ratios = [];
    const values = [];
    const bases = [];
    // Twice the rounds at half the length, in the order ABBA, so that the machine's drift
    // (other tenants come and go) weighs on baseline and figure alike.
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
  };
  const viaH2 = (p, frame, headers) => async () => h2load(port, p, frame, headers);
  const viaNode = (fn) => async () => (await nodeLoad(fn, { seconds: SECONDS / 2 })).perSecond;
  const healthRate = h2loadAvailable ? viaH2('/grpc.health.v1.Health/Check', healthFrame) : viaNode(() => health.check({ service: '' }));

  // BENCH_ONLY=mfa: only the second-factor Login figures, printed and not written.
  if (process.env.BENCH_ONLY === 'mfa') {
    await mfaLoginFigures(results, service, loginAny, 200);
    console.log(JSON.stringify(results.figures, null, 1));
    await service.stop();
    return;
  }
  // BENCH_ONLY=postgres: only the PostgreSQL figures, printed and not written (for working on them).
  if (process.env.BENCH_ONLY === 'postgres') {
    await postgresFigures(results, service, ratioFigure);
    console.log(JSON.stringify(results.figures, null, 1));
    await service.stop();
    return;
  }

  console.log('measuring Validate, token seen before ...');
  await ratioFigure('Validate, token seen before', 0.9, h2loadAvailable ? viaH2('/auth.v1.AuthService/Validate', validateFrame) : viaNode(() => auth.validate({ accessToken: token })), healthRate);
  console.log('measuring WhoAmI through the interceptor ...');
  const whoFrame = grpcFrame(SecureService.method.whoAmI.input, {});
  const bearer = new grpc.Metadata();
  bearer.set('authorization', `Bearer ${token}`);
  await ratioFigure(
    'SecureService.WhoAmI through the interceptor, token seen before',
    0.85,
    h2loadAvailable ? viaH2('/auth.v1.SecureService/WhoAmI', whoFrame, { authorization: `Bearer ${token}` }) : viaNode(() => secure.whoAmI({}, { metadata: bearer })),
    healthRate,
  );

  // --- CPU per call (Node generator, fixed call counts) -------------------------------------------
  const cpuPerCall = async (count, call) => {
    const before = cpuSeconds(server.pid);
    const { calls } = await nodeLoad(call, { count, seconds: 120 });
    return ((cpuSeconds(server.pid) - before) / calls) * 1e6;
  };
  const cpuFigure = async (name, count, call, allowanceUs) => {
    const values = [];
    const bases = [];
    for (let r = 0; r < ROUNDS; r++) {
      const base = () => cpuPerCall(count, () => health.check({ service: '' }));
      if (r % 2 === 0) {
        bases.push(await base());
        values.push(await call(count));
      } else {
        values.push(await call(count));
        bases.push(await base());
      }
    }
    const base = median(bases);
    const value = median(values);
    results.figures.push({ name, unit: 'µs server CPU per call', value, baseline: base, limit: base + allowanceUs, spread: spread(values), met: value <= base + allowanceUs });
  };
  console.log('measuring Validate with a new token every call ...');
  let minted = 0;
  await cpuFigure(
    'Validate, a new token every call (ES256)',
    3000,
    async (count) => {
      const tokens = Array.from({ length: count }, () => mint(minted++));
      return cpuPerCall(count, (i) => auth.validate({ accessToken: tokens[i] }));
    },
    1.7 * results.floors.es256VerifyUs,
  );
  console.log('measuring Refresh ...');
  await cpuFigure(
    'Refresh (memory store)',
    2048,
    async (count) => {
      // 32 sessions, each refreshed in its own sequence: every call presents the latest token.
      const chains = [];
      for (let i = 0; i < 32; i++) chains.push((await loginAny(i)).refreshToken);
      const before = cpuSeconds(server.pid);
      await Promise.all(
        chains.map(async (first) => {
          let current = first;
          for (let i = 0; i < count / 32; i++) current = (await auth.refresh({ refreshToken: current })).refreshToken;
        }),
      );
      return ((cpuSeconds(server.pid) - before) / count) * 1e6;
    },
    1.7 * (results.floors.es256SignUs + results.floors.sha256Us),
  );

  console.log('measuring IssueServiceToken with a secret ...');
  const adminToken = (await auth.login({ username: 'bench-admin', password: PASSWORD })).accessToken;
  const adminMetadata = new grpc.Metadata();
  adminMetadata.set('authorization', `Bearer ${adminToken}`);
  const account = await service.admin.createServiceAccount({ name: 'bench-reports', roles: ['reader'] }, { metadata: adminMetadata });
  await cpuFigure(
    'IssueServiceToken with a secret',
    2048,
    (count) => cpuPerCall(count, () => auth.issueServiceToken({ clientId: account.clientId, clientSecret: account.clientSecret })),
    1.7 * (results.floors.es256SignUs + results.floors.sha256Us),
  );

  // --- logins against the hashing capacity ------------------------------------------------------
  console.log('measuring Login ...');
  const capacity = hashConcurrency / (results.floors.argon2idMs / 1000);
  const loginRates = [];
  for (let r = 0; r < ROUNDS; r++) loginRates.push((await nodeLoad(loginAny, { concurrency: 8 })).perSecond);
  results.figures.push({ name: 'Login', unit: 'calls/s', value: median(loginRates), baseline: capacity, ratio: median(loginRates) / capacity, spread: spread(loginRates.map((x) => x / capacity)), target: 0.8, met: median(loginRates) / capacity >= 0.8 });

  console.log('measuring Login with a second factor ...');
  await mfaLoginFigures(results, service, loginAny, 200);

  console.log('measuring Login while Register is flooded ...');
  const loginCalm = [];
  const loginBusy = [];
  let registered = 0;
  for (let r = 0; r < ROUNDS; r++) {
    loginCalm.push(await nodeLoad(loginAny, { concurrency: 8 }));
    let stop = false;
    const flood = Promise.all(
      Array.from({ length: 16 }, async () => {
        while (!stop) await auth.register({ username: `flood${registered++}`, password: PASSWORD }).catch(() => {});
      }),
    );
    loginBusy.push(await nodeLoad(loginAny, { concurrency: 8 }));
    stop = true;
    await flood;
  }
  const loginRateRatio = median(loginBusy.map((b, i) => b.perSecond / loginCalm[i].perSecond));
  const loginP99Ratio = median(loginBusy.map((b, i) => b.p99 / loginCalm[i].p99));
  results.figures.push({ name: 'Login while Register is flooded: calls/s vs unloaded', unit: 'ratio', value: loginRateRatio, target: 0.5, met: loginRateRatio >= 0.5 });
  results.figures.push({ name: 'Login while Register is flooded: p99 vs unloaded p99', unit: 'ratio', value: loginP99Ratio, limit: 3, met: loginP99Ratio <= 3 });

  console.log('measuring Validate while logins saturate the hashing pool ...');
  const calm = [];
  const busy = [];
  for (let r = 0; r < ROUNDS; r++) {
    calm.push(await nodeLoad(() => auth.validate({ accessToken: token }), { concurrency: 16 }));
    let stop = false;
    const flood = Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        while (!stop) await loginAny(w).catch(() => {});
      }),
    );
    busy.push(await nodeLoad(() => auth.validate({ accessToken: token }), { concurrency: 16 }));
    stop = true;
    await flood;
  }
  const rateRatio = median(busy.map((b, i) => b.perSecond / calm[i].perSecond));
  const p99Ratio = median(busy.map((b, i) => b.p99 / calm[i].p99));
  results.figures.push({ name: 'Validate while logins saturate the hashing pool: calls/s vs unloaded', unit: 'ratio', value: rateRatio, target: 0.5, met: rateRatio >= 0.5 });
  results.figures.push({ name: 'Validate while logins saturate the hashing pool: p99 vs unloaded p99', unit: 'ratio', value: p99Ratio, limit: 3, met: p99Ratio <= 3 });

  // --- the same calls on the Redis store, next to the memory store ------------------------------
  if (spawnSync('redis-server', ['--version']).status === 0) await redisFigures(results, service, ratioFigure, viaH2);
  else console.log('redis-server not found: the Redis figures are skipped');
  if (postgresBin('initdb')) await postgresFigures(results, service, ratioFigure);
  else console.log('PostgreSQL server programs not found (apt-get install -y postgresql): the PostgreSQL figures are skipped');

  await service.stop();

  // --- memory store, in a child with --expose-gc -----------------------------------------------
  console.log('measuring the memory store ...');
  const mem = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', __filename, '--memory'], { encoding: 'utf8', maxBuffer: 1 << 20 }));
  results.figures.push({ name: 'Memory store, 1,000,000 live sessions (10 a user)', unit: 'bytes of heap per session', value: mem.bytesPerSession, limit: 320, met: mem.bytesPerSession <= 320 });
  results.figures.push({ name: 'Memory store under churn (1,000,000 created and expired)', unit: 'heap after sweep vs start', value: mem.churnRatio, limit: 1.1, met: mem.churnRatio <= 1.1 });
  results.figures.push({ name: 'Memory store, 1,000,000 users', unit: 'bytes of heap per user', value: mem.bytesPerUser, limit: 900, met: mem.bytesPerUser <= 900 });
  results.figures.push({
    name: 'ListUsers, a page of 1,000 at 1,000,000 users (memory store) vs at 3,000 users',
    unit: 'ms a page',
    value: mem.pageMsLarge,
    baseline: mem.pageMsSmall,
    ratio: mem.pageMsLarge / mem.pageMsSmall,
    spread: [mem.pageMsLarge / mem.pageMsSmall, mem.pageMsLarge / mem.pageMsSmall],
    target: undefined,
    limit: 3,
    met: mem.pageMsLarge / mem.pageMsSmall <= 3,
  });

  write(results);
}

/** Median milliseconds of one ListUsers page of 1,000 from a random place among `users` (named user0000000…). */
async function listUsersPageMs(store, users) {
  const runs = [];
  for (let r = 0; r < 41; r++) {
    const after = `user${String(Math.floor(Math.random() * (users - 2000))).padStart(7, '0')}`;
    const t0 = process.hrtime.bigint();
    const page = await store.listUsers({ prefix: '', after, limit: 1000 });
    runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (page.length !== 1000) throw new Error('short page');
  }
  return median(runs);
}

/** A random id of the service's shape, and a random argon2id PHC string (for filling stores). */
const randomId = (prefix) => `${prefix}_${crypto.randomBytes(16).toString('base64url')}`;
const randomPhc = () => `$argon2id$v=19$m=19456,t=2,p=1$${crypto.randomBytes(16).toString('base64').replace(/=+$/, '')}$${crypto.randomBytes(32).toString('base64').replace(/=+$/, '')}`;

/** 32 users with a session each on a service (for the store comparisons). */
async function storeFixtures(s, prefix) {
  const sessions = [];
  for (let i = 0; i < 32; i++) {
    await s.auth.register({ username: `${prefix}${i}`, password: PASSWORD }).catch(() => {});
    sessions.push(await s.auth.login({ username: `${prefix}${i}`, password: PASSWORD }));
  }
  return { token: sessions[0].accessToken, sessions };
}

/** Validate calls/s of one token (seen before) on a service: h2load when present. */
function validateOn(s, token) {
  return h2loadAvailable ? async () => h2load(s.port, '/auth.v1.AuthService/Validate', grpcFrame(ValidateRequestSchema, { accessToken: token })) : async () => (await nodeLoad(() => s.auth.validate({ accessToken: token }), { seconds: SECONDS / 2 })).perSecond;
}

/** Refresh calls/s: the fixture's 32 sessions, each refreshed in its own sequence, for half a round. */
function refreshOn(s, fixture) {
  return async () => {
    const end = Date.now() + (SECONDS / 2) * 1000;
    let calls = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      fixture.sessions.map(async (session) => {
        while (Date.now() < end) {
          const next = await s.auth.refresh({ refreshToken: session.refreshToken });
          session.refreshToken = next.refreshToken;
          calls++;
        }
      }),
    );
    return calls / (Number(process.hrtime.bigint() - t0) / 1e9);
  };
}

/**
 * Validate and Refresh on a service whose store is a local redis-server, each against the same
 * call on the memory-store service in the same run; then Redis's own bytes per user and per live
 * session (used_memory before and after, sessions made through the store as Login makes them).
 */
async function redisFigures(results, memoryService, ratioFigure, viaH2) {
  const { freePort } = require('./lib/service.js');
  const redisPort = await freePort();
  const redis = require('node:child_process').spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  process.on('exit', () => redis.kill('SIGKILL'));
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const { Redis } = require('ioredis');
  const probe = new Redis(redisUrl);
  await probe.ping();
  const service = await startService({ env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: redisUrl, AUTH_REGISTER_PER_ADDRESS: '1000000', AUTH_REGISTER_PER_MINUTE: '1000000' } });
  try {
    const onRedis = await storeFixtures(service, 'redis-bench');
    const onMemory = await storeFixtures(memoryService, 'redis-bench');
    console.log('measuring Validate on Redis vs memory ...');
    await ratioFigure('Validate, token seen before: Redis store vs memory store', 0.5, validateOn(service, onRedis.token), validateOn(memoryService, onMemory.token));
    console.log('measuring Refresh on Redis vs memory ...');
    await ratioFigure('Refresh: Redis store vs memory store', 0.5, refreshOn(service, onRedis), refreshOn(memoryService, onMemory));
  } finally {
    await service.stop();
  }

  // Bytes in Redis: 10,000 users, then 100,000 live sessions (10 a user), through the store.
  console.log('measuring Redis bytes per user and per session ...');
  const { RedisStore } = dist('src/store/redis/redis-store.js');
  await probe.flushall();
  const store = new RedisStore({ connection: { kind: 'single', url: redisUrl }, keyPrefix: 'auth:', commandTimeoutMs: 5000, accessGraceMs: 930_000, maxSessionsPerUser: 100 });
  await store.connect();
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await probe.info('memory'))[1]);
  const id = randomId;
  const phc = randomPhc;
  const USERS = 10_000;
  const PER_USER = 10;
  const before = await usedMemory();
  const userIds = [];
  for (let i = 0; i < USERS; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, async (_, k) => {
        const user = { id: id('usr'), username: `user${String(i + k).padStart(7, '0')}`, passwordHash: phc(), roles: ['user'], disabled: false, origin: 'api' };
        await store.createUser(user);
        userIds.push(user.id);
      }),
    );
  }
  const withUsers = await usedMemory();
  for (let i = 0; i < USERS; i += 100) {
    await Promise.all(
      userIds.slice(i, i + 100).flatMap((userId) =>
        Array.from({ length: PER_USER }, () => {
          const sessionId = id('ses');
          return store.createSession({ userId, sessionId, userGeneration: 0, refreshHash: crypto.createHash('sha256').update(sessionId).digest('base64url').slice(0, 22), refreshTtlMs: 1_209_600_000, sessionMaxAgeMs: 2_592_000_000, clientAddress: '10.1.2.3', amr: ['pwd'], userAgent: 'grpc-node-js/1.14.7' });
        }),
      ),
    );
  }
  const withSessions = await usedMemory();
  results.figures.push({ name: 'Redis store, 10,000 users', unit: 'bytes of Redis used_memory per user', value: (withUsers - before) / USERS, limit: 1300, met: (withUsers - before) / USERS <= 1300 });
  results.figures.push({ name: 'Redis store, 100,000 live sessions (10 a user)', unit: 'bytes of Redis used_memory per session', value: (withSessions - withUsers) / (USERS * PER_USER), limit: 400, met: (withSessions - withUsers) / (USERS * PER_USER) <= 400 });
  await store.close();
  probe.disconnect();
  redis.kill('SIGKILL');
}

/** Debian's PostgreSQL server programs (under /usr/lib/postgresql/<major>/bin), or on PATH. */
function postgresBin(program) {
  const base = '/usr/lib/postgresql';
  if (fs.existsSync(base)) {
    for (const major of fs.readdirSync(base).filter((d) => /^\d+$/.test(d)).sort((a, b) => b - a)) {
      const p = path.join(base, major, 'bin', program);
      if (fs.existsSync(p)) return p;
    }
  }
  const found = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

/** A throw-away PostgreSQL on a free port (as nobody when root: initdb refuses root), as the tests start one. */
async function startPostgres() {
  const { freePort } = require('./lib/service.js');
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pg-'));
  const asRoot = process.getuid() === 0;
  if (asRoot) fs.chownSync(dir, 65534, 65534);
  const as = (prog, args) => (asRoot ? ['runuser', ['-u', 'nobody', '--', prog, ...args]] : [prog, args]);
  const [icmd, iargs] = as(postgresBin('initdb'), ['-D', path.join(dir, 'data'), '-U', 'auth', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
  execFileSync(icmd, iargs, { stdio: 'ignore' });
  // Durable as a production server is (fsync on, synchronous commit): the figures include it.
  const [pcmd, pargs] = as(postgresBin('postgres'), ['-D', path.join(dir, 'data'), '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'shared_buffers=256MB', '-c', 'max_connections=100']);
  const child = require('node:child_process').spawn(pcmd, pargs, { stdio: 'ignore' });
  const kill = () => {
    try {
      process.kill(Number(fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGINT');
    } catch {
      child.kill('SIGKILL');
    }
  };
  process.on('exit', kill);
  const { Client } = require('pg');
  for (let i = 0; ; i++) {
    const c = new Client({ host: '127.0.0.1', port, user: 'auth', database: 'postgres' });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (err) {
      await c.end().catch(() => {});
      if (i > 300) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const url = `postgres://auth@127.0.0.1:${port}/postgres`;
  return { url, stop: kill };
}

/**
 * Login, Validate and Refresh on a service whose store is a local PostgreSQL, each against the
 * same call on the memory-store service in the same run; PostgreSQL's bytes per user and per
 * session (relation sizes, indexes included); a ListUsers page at 1,000,000 users vs at 1,000.
 */
async function postgresFigures(results, memoryService, ratioFigure) {
  const pg = await startPostgres();
  const service = await startService({ env: { AUTH_DATABASE_URL: pg.url, AUTH_REGISTER_PER_ADDRESS: '1000000', AUTH_REGISTER_PER_MINUTE: '1000000' } });
  try {
    const onPg = await storeFixtures(service, 'pg-bench');
    const onMemory = await storeFixtures(memoryService, 'pg-bench');
    console.log('measuring Validate on PostgreSQL vs memory ...');
    await ratioFigure('Validate, token seen before: PostgreSQL store vs memory store', 0.7, validateOn(service, onPg.token), validateOn(memoryService, onMemory.token));
    console.log('measuring Refresh on PostgreSQL vs memory ...');
    await ratioFigure('Refresh: PostgreSQL store vs memory store', 0.6, refreshOn(service, onPg), refreshOn(memoryService, onMemory));
    // Login: 32 users, each logging in its own sequence (argon2id sets the pace on both).
    const loginOn = (s, prefix) => async () => {
      const end = Date.now() + (SECONDS / 2) * 1000;
      let calls = 0;
      const t0 = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          while (Date.now() < end) {
            await s.auth.login({ username: `${prefix}${w}`, password: PASSWORD });
            calls++;
          }
        }),
      );
      return calls / (Number(process.hrtime.bigint() - t0) / 1e9);
    };
    console.log('measuring Login on PostgreSQL vs memory ...');
    await ratioFigure('Login: PostgreSQL store vs memory store', 0.8, loginOn(service, 'pg-bench'), loginOn(memoryService, 'pg-bench'));
  } finally {
    await service.stop();
  }

  console.log('measuring PostgreSQL bytes per user and per session, and ListUsers at 1,000,000 users ...');
  const { Client } = require('pg');
  const admin = new Client({ connectionString: pg.url });
  await admin.connect();
  await admin.query('CREATE DATABASE bench_sizes');
  await admin.end();
  const url = pg.url.replace(/\/postgres$/, '/bench_sizes');
  const { PostgresStore } = dist('src/store/postgres/postgres-store.js');
  const store = new PostgresStore({ connection: { url, poolSize: 10 }, statementTimeoutMs: 30_000, accessGraceMs: 930_000, maxSessionsPerUser: 100, migrate: 'auto' });
  await store.connect();
  const sql = new Client({ connectionString: url });
  await sql.connect();
  const size = async (table) => Number((await sql.query('SELECT pg_total_relation_size($1) AS b', [table])).rows[0].b);
  const id = randomId;
  const phc = randomPhc;
  const USERS = 10_000;
  const PER_USER = 10;
  const usersBefore = await size('auth_users');
  const userIds = [];
  for (let i = 0; i < USERS; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, async (_, k) => {
        const user = { id: id('usr'), username: `user${String(i + k).padStart(7, '0')}`, passwordHash: phc(), roles: ['user'], disabled: false, origin: 'api' };
        await store.createUser(user, { skeleton: user.username });
        userIds.push(user.id);
      }),
    );
  }
  await sql.query('VACUUM ANALYZE auth_users');
  const perUser = ((await size('auth_users')) - usersBefore) / USERS;
  const sessionsBefore = await size('auth_sessions');
  for (let i = 0; i < USERS; i += 100) {
    await Promise.all(
      userIds.slice(i, i + 100).flatMap((userId) =>
        Array.from({ length: PER_USER }, () => {
          const sessionId = id('ses');
          return store.createSession({ userId, sessionId, userGeneration: 0, refreshHash: crypto.createHash('sha256').update(sessionId).digest('base64url'), refreshTtlMs: 1_209_600_000, sessionMaxAgeMs: 2_592_000_000, clientAddress: '10.1.2.3', amr: ['pwd'], userAgent: 'grpc-node-js/1.14.7' });
        }),
      ),
    );
  }
  await sql.query('VACUUM ANALYZE auth_sessions');
  const perSession = ((await size('auth_sessions')) - sessionsBefore) / (USERS * PER_USER);
  results.figures.push({ name: 'PostgreSQL store, 10,000 users', unit: 'bytes of table and indexes per user', value: perUser, limit: 1000, met: perUser <= 1000 });
  results.figures.push({ name: 'PostgreSQL store, 100,000 live sessions (10 a user)', unit: 'bytes of table and indexes per session', value: perSession, limit: 700, met: perSession <= 700 });

  await sql.query('DELETE FROM auth_users');
  const fill = (from, to) =>
    sql.query(
      `INSERT INTO auth_users (id, username, password_hash, roles, disabled, generation, revision, origin, created_at, password_changed_at)
       SELECT 'usr_' || lpad(i::text, 22, '0'), 'user' || lpad(i::text, 7, '0'), $3, '{user}', false, 0, 1, 'api', 0, 0 FROM generate_series($1::int, $2::int) i`,
      [from, to, phc()],
    );
  await fill(0, 2999);
  await sql.query('VACUUM ANALYZE auth_users');
  const small = await listUsersPageMs(store, 3000);
  await fill(3000, 999_999);
  await sql.query('VACUUM ANALYZE auth_users');
  const large = await listUsersPageMs(store, 1_000_000);
  results.figures.push({ name: 'ListUsers, a page of 1,000 at 1,000,000 users (PostgreSQL store) vs at 3,000 users', unit: 'ms a page', value: large, baseline: small, ratio: large / small, spread: [large / small, large / small], limit: 2, met: large / small <= 2 });
  await sql.end();
  await store.close();
  pg.stop();
}

/** The memory figures, run in a child process so the heap holds nothing else. */
async function memory() {
  const T0 = Date.UTC(2030, 0, 1);
  let now = T0;
  const clock = { now: () => now, setTimer: () => ({ cancel() {} }) };
  const options = { clock, accessGraceMs: 930_000, maxSessionsPerUser: 100, maxAttemptEntries: 100_000 };
  const id = randomId;
  // A real argon2id PHC string is 97 characters: each user gets its own, as on a real server.
  // (Made flat, as argon2 and protobuf decoding hand them over, not as a tree of concatenations.)
  const flat = (s) => Buffer.from(s, 'latin1').toString('latin1');
  const hash = () => flat(`$argon2id$v=19$m=19456,t=2,p=1$${crypto.randomBytes(16).toString('base64').replace(/=+$/, '')}$${crypto.randomBytes(32).toString('base64').replace(/=+$/, '')}`);
  const heap = () => {
    global.gc();
    return process.memoryUsage().heapUsed;
  };
  const addUsers = async (store, count) => {
    const ids = [];
    for (let i = 0; i < count; i++) {
      const user = { id: id('usr'), username: flat(`user${String(i).padStart(7, '0')}`), passwordHash: hash(), roles: ['user'], disabled: false, origin: 'api' };
      await store.createUser(user);
      ids.push(user.id);
    }
    return ids;
  };
  const addSessions = async (store, userIds, perUser, maxAgeMs) => {
    for (const userId of userIds) {
      for (let k = 0; k < perUser; k++) {
        const sessionId = id('ses');
        await store.createSession({ userId, sessionId, userGeneration: 0, refreshHash: crypto.createHash('sha256').update(sessionId).digest('base64url').slice(0, 22), refreshTtlMs: maxAgeMs, sessionMaxAgeMs: maxAgeMs, clientAddress: '10.1.2.3', amr: ['pwd'], userAgent: 'grpc-node-js/1.14.7' });
      }
    }
  };
  const pageMs = listUsersPageMs;

  const USERS = 1_000_000;
  const start = heap();
  const store = new MemoryStore(options);
  const userIds = await addUsers(store, USERS);
  const withUsers = heap();
  const bytesPerUser = (withUsers - start) / USERS;
  const small = new MemoryStore(options);
  await addUsers(small, 3000);
  const pageMsSmall = await pageMs(small, 3000);
  const pageMsLarge = await pageMs(store, USERS);

  // 1,000,000 sessions, ten each for 100,000 of the users.
  const SESSIONS = 1_000_000;
  await addSessions(store, userIds.slice(0, SESSIONS / 10), 10, 3_600_000);
  const bytesPerSession = (heap() - withUsers) / SESSIONS;
  now += 3_600_000;
  store.sweep(now);
  const churnStart = heap();
  await addSessions(store, userIds.slice(0, SESSIONS / 10), 10, 1000);
  now += 1000;
  store.sweep(now);
  const churnRatio = heap() / churnStart;
  process.stdout.write(JSON.stringify({ bytesPerUser, bytesPerSession, churnRatio, pageMsSmall, pageMsLarge, keep: [store.size(), small.size()] }));
}

/**
 * Login with a second factor (Login, then CompleteLogin with a TOTP code) next to Login without,
 * on the same service in the same rounds (ABBA): logins per second and server CPU per login. A
 * TOTP code is accepted once per user and 30-second step, so every second-factor login of the
 * run is a different user's (`perRound` × ROUNDS users, enrolled first through the API).
 */
async function mfaLoginFigures(results, service, loginAny, perRound) {
  const { TOTP, Secret } = require('otpauth');
  const { auth, account, server } = service;
  const users = [];
  console.log(`enrolling ${perRound * ROUNDS} users in TOTP ...`);
  await nodeLoad(
    async (i) => {
      const username = `bench-mfa${i}`;
      await auth.register({ username, password: PASSWORD });
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${(await auth.login({ username, password: PASSWORD })).accessToken}`);
      const enrolled = await account.enrollTotp({}, { metadata });
      const totp = new TOTP({ secret: Secret.fromBase32(enrolled.secret) });
      const now = Date.now();
      await account.confirmTotp({ enrollmentId: enrolled.enrollmentId, code: totp.generate({ timestamp: now }), password: PASSWORD }, { metadata });
      users[i] = { username, totp, spentStep: Math.floor(now / 30_000) };
    },
    { count: perRound * ROUNDS, concurrency: 8, seconds: 600 },
  );
  if (users.filter(Boolean).length !== perRound * ROUNDS) throw new Error('not every bench user could enroll');
  let next = 0;
  const mfaLogin = async () => {
    const user = users[next++];
    const first = await auth.login({ username: user.username, password: PASSWORD });
    if (!first.mfaRequired) throw new Error('the bench user has no second factor');
    // The step after the confirming one when that is still now (one step ahead is accepted).
    const step = Math.max(Math.floor(Date.now() / 30_000), user.spentStep + 1);
    const done = await auth.completeLogin({ mfaToken: first.mfaToken, code: user.totp.generate({ timestamp: step * 30_000 }) });
    if (done.accessToken === '') throw new Error('CompleteLogin gave no token');
  };
  const measure = async (call) => {
    const before = cpuSeconds(server.pid);
    const { calls, perSecond } = await nodeLoad(call, { count: perRound, concurrency: 8, seconds: 600 });
    return { perSecond, cpuUs: ((cpuSeconds(server.pid) - before) / calls) * 1e6 };
  };
  const plain = [];
  const mfa = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      plain.push(await measure(loginAny));
      mfa.push(await measure(mfaLogin));
    } else {
      mfa.push(await measure(mfaLogin));
      plain.push(await measure(loginAny));
    }
  }
  const rates = mfa.map((m, i) => m.perSecond / plain[i].perSecond);
  results.figures.push({
    name: 'Login with a second factor (Login + CompleteLogin) vs Login without: logins/s',
    unit: 'logins/s',
    value: median(mfa.map((m) => m.perSecond)),
    baseline: median(plain.map((m) => m.perSecond)),
    ratio: median(rates),
    spread: spread(rates),
    target: 0.8,
    met: median(rates) >= 0.8,
  });
  const cpu = mfa.map((m) => m.cpuUs);
  const cpuBase = median(plain.map((m) => m.cpuUs));
  results.figures.push({
    name: 'Login with a second factor (Login + CompleteLogin): server CPU per login',
    unit: 'µs server CPU per login',
    value: median(cpu),
    baseline: cpuBase,
    limit: 1.25 * cpuBase,
    spread: spread(cpu),
    met: median(cpu) <= 1.25 * cpuBase,
  });
}

function hashConcurrencyNote(results) {
  const { argon2idParallelPerSecond: parallel, argon2idMs } = results.floors;
  return `${results.hashConcurrency} argon2id hashes at a time: ${f(parallel, 0)} hashes/s (${f(parallel / (results.hashConcurrency / (argon2idMs / 1000)))} × the Login target's capacity)`;
}

const f = (x, d = 2) => (typeof x === 'number' ? x.toFixed(d) : String(x));

function write(results) {
  const versions = {
    node: process.version,
    grpcJs: require('@grpc/grpc-js/package.json').version,
    h2load: h2loadAvailable ? execFileSync('h2load', ['--version'], { encoding: 'utf8' }).split('\n')[0] : 'not found',
  };
  const machine = { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` };
  const json = { date: new Date().toISOString(), command: 'npm run bench', rounds: ROUNDS, secondsPerRound: SECONDS, machine, versions, ...results };
  const outDir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  const rows = results.figures.map((r) => {
    const measured = r.ratio !== undefined ? `${f(r.ratio)} × baseline (${f(r.value, 0)} vs ${f(r.baseline, 0)} ${r.unit}; rounds ${f(r.spread[0])}–${f(r.spread[1])})` : r.baseline !== undefined ? `${f(r.value, 1)} ${r.unit} (baseline ${f(r.baseline, 1)}; rounds ${f(r.spread[0], 1)}–${f(r.spread[1], 1)})` : `${f(r.value)} ${r.unit}`;
    const target = r.target !== undefined ? `≥ ${r.target}` : `≤ ${f(r.limit, 1)}`;
    return `| ${r.name} | ${measured} | ${target} | ${r.met ? 'met' : '**not met**'} |`;
  });
  const md = `# Benchmark results

Command: \`npm run bench\` (calls/s figures: ${2 * ROUNDS} rounds of ${SECONDS / 2} s; CPU-per-call and login figures: ${ROUNDS} rounds; baseline and figure interleaved ABBA). Date: ${json.date}.
Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.platform}. Node ${versions.node}, grpc-js ${versions.grpcJs}, ${versions.h2load}.
Load: ${results.generator}.
Raw floors (this process): ES256 verify ${f(results.floors.es256VerifyUs, 1)} µs, ES256 sign ${f(results.floors.es256SignUs, 1)} µs, SHA-256 ${f(results.floors.sha256Us, 2)} µs, argon2id (19 MiB, t=2) ${f(results.floors.argon2idMs, 1)} ms; ${hashConcurrencyNote(results)}.

| Figure | Measured (median; spread over rounds) | Target | |
|---|---|---|---|
${rows.join('\n')}
`;
  fs.writeFileSync(path.join(outDir, 'latest.md'), md);
  console.log(md);
  // docs/performance.md's table is this run's (test/bench-results.test.ts keeps them in step).
  const readmePath = path.join(ROOT, 'docs', 'performance.md');
  const readme = fs.readFileSync(readmePath, 'utf8');
  const table = `| Figure | Measured (median; spread over rounds) | Target | |\n|---|---|---|---|\n${rows.join('\n')}\n`;
  const marked = /(<!-- bench:table -->\n)[\s\S]*?(<!-- \/bench:table -->)/;
  if (marked.test(readme)) fs.writeFileSync(readmePath, readme.replace(marked, (_, open, close) => `${open}${table}${close}`));
}

if (process.argv.includes('--memory')) memory();
else main().catch((err) => {
  console.error(err);
  process.exit(1);
});
