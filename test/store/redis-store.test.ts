import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { ManualClock } from '../../src/clock';
import { newId } from '../../src/core/ids';
import { ACCOUNT_POLICY } from '../../src/core/login-throttle';
import { RedisStore } from '../../src/store/redis/redis-store';
import { describeWithRedis, startRedis } from '../helpers/redis';
import { describeStoreConformance } from './conformance';
import { eventually } from '../helpers/wait';

let prefix = 0;
const open = async (url: string, options: { commandTimeoutMs?: number; clock?: ManualClock; maxSessionsPerUser?: number } = {}) => {
  const store = new RedisStore({
    connection: { kind: 'single', url },
    keyPrefix: `test${++prefix}:`,
    commandTimeoutMs: options.commandTimeoutMs ?? 1000,
    accessGraceMs: 60_000,
    maxSessionsPerUser: options.maxSessionsPerUser ?? 100,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  await store.connect();
  return store;
};

const random = { bytes: randomBytes };
const HOUR = 3_600_000;

describeWithRedis('RedisStore', (redis) => {
  describeStoreConformance('redis', ({ clock, maxSessionsPerUser }) => open(redis().url, { clock, maxSessionsPerUser }));

  /** A user with one session, on Redis's own clock (no test clock). */
  async function userWithSession(store: RedisStore) {
    const userId = newId(random, 'usr');
    await store.createUser({ id: userId, username: `u${randomBytes(4).toString('hex')}`, passwordHash: 'h', roles: ['r'], disabled: false, origin: 'api' });
    const sessionId = newId(random, 'ses');
    const created = await store.createSession({ userId, sessionId, userGeneration: 0, refreshHash: 'h0'.padEnd(22, 'x'), refreshTtlMs: HOUR, sessionMaxAgeMs: 24 * HOUR, clientAddress: 'a', amr: ['pwd'], userAgent: 'u' });
    return { userId, sessionId, created };
  }

  test('on its own clock (TIME), the store stamps Redis’s time, whatever the instance’s', async () => {
    const store = await open(redis().url);
    try {
      const before = Date.now();
      const { created } = await userWithSession(store);
      expect(created.outcome).toBe('created');
      if (created.outcome === 'created') {
        expect(created.now).toBeGreaterThanOrEqual(before - 1000);
        expect(created.now).toBeLessThanOrEqual(Date.now() + 1000);
        expect(created.expiresAt - created.now).toBe(24 * HOUR);
      }
    } finally {
      await store.close();
    }
  });

  test('a user’s keys share one hash tag; session keys expire by themselves', async () => {
    const store = await open(redis().url);
    const raw = new Redis(redis().url);
    try {
      const { userId, sessionId } = await userWithSession(store);
      const keys = (await raw.keys(`test${prefix}:{*`)).sort();
      expect(keys).toEqual([`test${prefix}:{${userId}}:s:${sessionId}`, `test${prefix}:{${userId}}:ss`, `test${prefix}:{${userId}}:u`]);
      expect(await raw.pttl(`test${prefix}:{${userId}}:s:${sessionId}`)).toBeGreaterThan(0);
      expect(await raw.pttl(`test${prefix}:{${userId}}:ss`)).toBeGreaterThan(0);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  test('a session’s storage stays the same however often it rotates: 1,000 rotations, same keys, same bytes', async () => {
    const store = await open(redis().url);
    const raw = new Redis(redis().url);
    try {
      const { userId, sessionId } = await userWithSession(store);
      const rotate = (g: number) =>
        store.rotateRefreshToken({ userId, sessionId, generation: g, hash: `h${g}`.padEnd(22, 'x'), successorHash: `h${g + 1}`.padEnd(22, 'x'), sealedSuccessor: 's'.repeat(120), refreshTtlMs: HOUR, reuseIntervalMs: 10_000, tagged: true });
      expect((await rotate(0)).outcome).toBe('rotated');
      const keys = async () => (await raw.keys(`test${prefix}:*`)).length;
      const bytes = async () => (await raw.memory('USAGE', `test${prefix}:{${userId}}:s:${sessionId}`)) as number;
      const [keysAfterOne, bytesAfterOne] = [await keys(), await bytes()];
      for (let g = 1; g < 1000; g++) expect((await rotate(g)).outcome).toBe('rotated');
      expect(await keys()).toBe(keysAfterOne);
      // The same fields, values of the same length: a few bytes of encoding slack at most.
      expect(Math.abs((await bytes()) - bytesAfterOne)).toBeLessThanOrEqual(16);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });
});

describeWithRedis('RedisStore outages', () => {
  test('Redis down: calls fail fast with unavailable, and the store recovers by itself', async () => {
    const own = await startRedis();
    const store = await open(own.url, { commandTimeoutMs: 300 });
    try {
      await store.ping();
      await own.stop();
      const t0 = Date.now();
      await expect(store.liveSession(newId(random, 'usr'), newId(random, 'ses'))).rejects.toMatchObject({ code: 'unavailable', message: 'session store unavailable' });
      await expect(store.ping()).rejects.toMatchObject({ code: 'unavailable' });
      // ioredis' own timers, not the service's clock: the bound only tells a hang from an answer.
      expect(Date.now() - t0).toBeLessThan(5000);
      const again = await startRedis(own.port);
      try {
        await eventually(() => store.ping(), { intervalMs: 100 });
        await expect(store.liveSession(newId(random, 'usr'), newId(random, 'ses'))).resolves.toBeUndefined();
      } finally {
        await store.close();
        await again.stop();
      }
    } finally {
      await store.close();
    }
  });

  test('begins that timed out while Redis hung reserve nothing when it runs them later: the account keeps its free attempts', async () => {
    const own = await startRedis();
    const store = await open(own.url, { commandTimeoutMs: 300 });
    const key = `acct:${randomBytes(4).toString('hex')}`;
    try {
      own.process.kill('SIGSTOP');
      // ioredis still sends each: Redis runs them when it wakes, past the deadline each carries.
      for (let i = 0; i < ACCOUNT_POLICY.freeFailures; i++) await expect(store.beginAttempt(key, ACCOUNT_POLICY)).rejects.toMatchObject({ code: 'unavailable' });
      await new Promise((r) => setTimeout(r, 500));
      own.process.kill('SIGCONT');
      await eventually(() => store.ping(), { intervalMs: 100 });
      // Had the late begins reserved, five attempts in flight would hold the account back for a minute.
      for (let i = 0; i < ACCOUNT_POLICY.freeFailures; i++) expect(await store.beginAttempt(key, ACCOUNT_POLICY)).toEqual({ allowed: true });
      expect(await store.beginAttempt(key, ACCOUNT_POLICY)).toMatchObject({ allowed: false });
    } finally {
      own.process.kill('SIGCONT');
      await store.close();
      await own.stop();
    }
  });

  test('Redis hanging: a command fails with unavailable after the command timeout, not later', async () => {
    const own = await startRedis();
    const store = await open(own.url, { commandTimeoutMs: 300 });
    try {
      own.process.kill('SIGSTOP');
      const t0 = Date.now();
      await expect(store.liveSession(newId(random, 'usr'), newId(random, 'ses'))).rejects.toMatchObject({ code: 'unavailable' });
      // ioredis' own timers, not the service's clock: the bound only tells a hang from an answer.
      expect(Date.now() - t0).toBeLessThan(5000);
      own.process.kill('SIGCONT');
      await eventually(() => store.ping(), { intervalMs: 100 });
    } finally {
      own.process.kill('SIGCONT');
      await store.close();
      await own.stop();
    }
  });
});
