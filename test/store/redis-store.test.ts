import { RedisStore } from '../../src/store/redis-store';
import { describeWithRedis, startRedis } from '../helpers/redis';
import { describeStoreConformance } from './store-conformance';
import { eventually } from '../helpers/wait';

let prefix = 0;
const open = async (url: string, commandTimeout = 1000) => {
  const store = new RedisStore({ url, keyPrefix: `test${++prefix}:`, commandTimeout, revokedRetention: 60_000 });
  await store.connect();
  return store;
};

describeWithRedis('RedisStore', (redis) => {
  describeStoreConformance('redis', () => open(redis().url));

  test('keys of one session share a hash tag and every session key has a TTL', async () => {
    const store = await open(redis().url);
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis().url);
    try {
      const expiresAt = Date.now() + 3_600_000;
      await store.createSession({
        session: { id: 'ses_AAAAAAAAAAAAAAAAAAAAAA', userId: 'u', username: 'u', roles: [], createdAt: Date.now(), expiresAt },
        refreshHash: 'h0',
        refreshExpiresAt: expiresAt - 1000,
      });
      const keys = (await raw.keys(`test${prefix}:*`)).sort();
      expect(keys).toEqual([`test${prefix}:{ses_AAAAAAAAAAAAAAAAAAAAAA}:s`, `test${prefix}:{ses_AAAAAAAAAAAAAAAAAAAAAA}:t:h0`]);
      for (const key of keys) expect(await raw.pttl(key)).toBeGreaterThan(0);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });
});

describeWithRedis('RedisStore outages', () => {
  test('Redis down: calls fail fast with unavailable, and the store recovers by itself', async () => {
    const own = await startRedis();
    const store = await open(own.url, 300);
    try {
      await store.ping();
      await own.stop();
      const t0 = Date.now();
      await expect(store.isSessionActive('ses_x', Date.now())).rejects.toMatchObject({ code: 'unavailable', message: 'session store unavailable' });
      await expect(store.ping()).rejects.toMatchObject({ code: 'unavailable' });
      // ioredis' own timers, not the service's clock: the bound only tells a hang from an answer.
      expect(Date.now() - t0).toBeLessThan(5000);
      const again = await startRedis(own.port);
      try {
        await eventually(() => store.ping(), { intervalMs: 100 });
        await expect(store.isSessionActive('ses_x', Date.now())).resolves.toBe(false);
      } finally {
        await store.close();
        await again.stop();
      }
    } finally {
      await store.close();
    }
  });

  test('Redis hanging: a command fails with unavailable after the command timeout, not later', async () => {
    const own = await startRedis();
    const store = await open(own.url, 300);
    try {
      own.process.kill('SIGSTOP');
      const t0 = Date.now();
      await expect(store.isSessionActive('ses_x', Date.now())).rejects.toMatchObject({ code: 'unavailable' });
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
