'use strict';
// The Redis store beside the memory store: the same calls in the same rounds, and Redis's own bytes.
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const { Redis } = require('ioredis');
const { freePort, startService } = require('../lib/service.js');
const { dist, randomId, randomPhc, ratioFigure } = require('../lib/measure.js');
const { refreshOn, storeFixtures, validateOn } = require('../fixtures.js');

/** Whether a redis-server is there to measure with. */
const redisAvailable = () => spawnSync('redis-server', ['--version']).status === 0;

/**
 * Validate and Refresh on a service whose store is a local redis-server, each against the same
 * call on the memory-store service in the same run; then Redis's own bytes per user and per live
 * session (used_memory before and after, sessions made through the store as Login makes them).
 */
async function redisFigures(results, memoryService) {
  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  process.on('exit', () => redis.kill('SIGKILL'));
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const probe = new Redis(redisUrl);
  probe.on('error', () => {}); // refused until redis-server listens; ioredis retries
  await probe.ping();
  const service = await startService({ env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: redisUrl, AUTH_REGISTER_PER_ADDRESS: '1000000', AUTH_REGISTER_PER_MINUTE: '1000000' } });
  try {
    const onRedis = await storeFixtures(service, 'redis-bench');
    const onMemory = await storeFixtures(memoryService, 'redis-bench');
    console.log('measuring Validate on Redis vs memory ...');
    await ratioFigure(results, 'Validate, token seen before: Redis store vs memory store', 0.5, validateOn(service, onRedis.token), validateOn(memoryService, onMemory.token));
    console.log('measuring Refresh on Redis vs memory ...');
    await ratioFigure(results, 'Refresh: Redis store vs memory store', 0.5, refreshOn(service, onRedis), refreshOn(memoryService, onMemory));
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

module.exports = { redisAvailable, redisFigures };
