import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ManualClock } from '../../src/clock';
import { silentLog } from '../../src/core/events';
import { newId } from '../../src/core/ids';
import { LoginThrottle } from '../../src/core/login-throttle';
import { RedisStore } from '../../src/store/redis/redis-store';
import type { Store } from '../../src/store/store';
import { describeWithRedis, startRedis } from '../helpers/redis';
import { memoryStore } from '../helpers/stores';

/** A login that fails (the throttle's view): begin, then a failure, as Login does after its hash. */
async function failedLogin(throttle: LoginThrottle, name: string, clientAddress: string): Promise<'failed' | 'refused'> {
  try {
    const attempt = await throttle.begin(name, { clientAddress, log: silentLog });
    await attempt.failed();
    return 'failed';
  } catch {
    return 'refused';
  }
}

/** 50,000 failed logins with unique, huge names from one address, 200 at a time. */
async function floodFromOneAddress(throttle: LoginThrottle): Promise<Map<string, number>> {
  const outcomes = new Map<string, number>();
  const name = (i: number) => `${i}${'\ufdfa'.repeat(80)}`.normalize('NFKC');
  for (let i = 0; i < 50_000; i += 200) {
    const batch = await Promise.all(Array.from({ length: 200 }, (_, k) => failedLogin(throttle, name(i + k), '203.0.113.9')));
    for (const o of batch) outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
  }
  return outcomes;
}

describe('failed-login state in memory: bounded', () => {
  test('50,000 failed logins with unique names from one address leave a few entries, not 50,000', async () => {
    const store = memoryStore(new ManualClock());
    const outcomes = await floodFromOneAddress(new LoginThrottle(store));
    expect(outcomes.get('refused')).toBeGreaterThan(49_000);
    // The address, and the names tried before the address was held back (the first batch ran together).
    expect(store.size().attempts).toBeLessThanOrEqual(1 + 200);
  });
});

describeWithRedis('failed-login state in Redis: bounded', (redis) => {
  const open = (url: string, prefix: string) => new RedisStore({ connection: { kind: 'single', url }, keyPrefix: prefix, commandTimeoutMs: 2000, accessGraceMs: 60_000, maxSessionsPerUser: 100 });

  test('50,000 failed logins with unique names from one address: a few keys and a few KB, not 155 MB', async () => {
    const store = open(redis().url, 'abuse1:');
    const raw = new Redis(redis().url);
    try {
      await store.connect();
      const before = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))![1]);
      const outcomes = await floodFromOneAddress(new LoginThrottle(store));
      expect(outcomes.get('refused')).toBeGreaterThan(49_000);
      const keys = (await raw.keys('abuse1:*')).filter((k) => k !== 'abuse1:health');
      expect(keys.length).toBeLessThanOrEqual(1 + 200);
      for (const key of keys) expect(key.length).toBeLessThan(64); // fixed-size keys, never a raw name
      const after = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))![1]);
      expect(after - before).toBeLessThan(500_000);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  test('with maxmemory and noeviction, a flood from 2,000 addresses cannot fill Redis: real logins and refreshes keep working', async () => {
    const own = await startRedis(undefined, ['--maxmemory', '12mb', '--maxmemory-policy', 'noeviction']);
    const store: Store = open(own.url, 'abuse2:');
    const raw = new Redis(own.url);
    try {
      await store.connect();
      const throttle = new LoginThrottle(store);
      // 20,000 failures: 10 names from each of 2,000 addresses, 250 at a time.
      for (let i = 0; i < 20_000; i += 250) {
        const address = (n: number) => `198.51.${Math.floor(n / 10) >> 8}.${Math.floor(n / 10) & 255}`;
        await Promise.all(Array.from({ length: 250 }, (_, k) => failedLogin(throttle, `bot-${i + k}-${randomBytes(2).toString('hex')}`, address(i + k))));
      }
      const used = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))![1]);
      expect(used).toBeLessThan(12 * 1024 * 1024);
      // A real user still logs in (a session is written) and refreshes.
      const userId = newId({ bytes: randomBytes }, 'usr');
      expect(await store.createUser({ id: userId, username: 'real-user', passwordHash: 'h', roles: [], disabled: false, origin: 'api' })).toBe('created');
      const attempt = await throttle.begin('real-user', { clientAddress: '192.0.2.1', log: silentLog });
      await attempt.succeeded();
      const sessionId = newId({ bytes: randomBytes }, 'ses');
      const created = await store.createSession({ userId, sessionId, userGeneration: 0, refreshHash: 'h0'.padEnd(22, 'x'), refreshTtlMs: 60_000, sessionMaxAgeMs: 60_000, clientAddress: '192.0.2.1', amr: ['pwd'], userAgent: '' });
      expect(created.outcome).toBe('created');
      const rotated = await store.rotateRefreshToken({ userId, sessionId, generation: 0, hash: 'h0'.padEnd(22, 'x'), tagged: true, successorHash: 'h1'.padEnd(22, 'x'), sealedSuccessor: 's', refreshTtlMs: 60_000, reuseIntervalMs: 10_000 });
      expect(rotated.outcome).toBe('rotated');
    } finally {
      raw.disconnect();
      await store.close();
      await own.stop();
    }
  }, 60_000);
});
