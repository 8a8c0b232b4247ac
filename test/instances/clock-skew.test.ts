import { status } from '@grpc/grpc-js';
import { ManualClock } from '../../src/clock';
import { createKeySet, generateEcKey } from '../../src/core/keys';
import { describeWithRedis } from '../helpers/redis';
import { PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';

const START = Date.UTC(2030, 0, 1);

/**
 * Two instances on one Redis whose clocks disagree (each has its own injected clock). The login
 * throttle, rotation and re-use detection run on Redis's clock, so the skew refuses nothing;
 * tokens cross instances within AUTH_CLOCK_SKEW (30 s).
 */
describeWithRedis('instances whose clocks disagree share one Redis', (redis) => {
  let prefix = 0;
  const cases = [
    { name: 'B 200 ms behind A', skewMs: 200 },
    { name: 'B 10 s behind A', skewMs: 10_000 },
    { name: 'B 10 s ahead of A', skewMs: -10_000 },
  ];

  describe.each(cases)('$name', ({ skewMs }) => {
    let a: TestServer;
    let b: TestServer;
    beforeAll(async () => {
      const keys = createKeySet([generateEcKey()]);
      const env = { AUTH_STORE: 'redis', AUTH_REDIS_URL: redis().url, AUTH_REDIS_KEY_PREFIX: `skew${++prefix}:` };
      a = await startTestServer({ env, keys, clock: new ManualClock(START) });
      b = await startTestServer({ env, keys, clock: new ManualClock(START - skewMs) });
      await a.auth.register({ username: 'alice', password: PASSWORD });
    });
    afterAll(async () => {
      await a.close();
      await b.close();
    });

    test('logins alternating between the instances, some after a failed one, are all let in', async () => {
      const results: string[] = [];
      for (let round = 0; round < 20; round++) {
        const [first, second] = round % 2 === 0 ? [a, b] : [b, a];
        // Every fourth round the other instance sees a wrong password just before.
        if (round % 4 === 3) {
          expect(await statusOf(second.auth.login({ username: 'alice', password: 'wrong password!' }))).toMatchObject({ code: status.UNAUTHENTICATED });
        }
        results.push(await first.auth.login({ username: 'alice', password: PASSWORD }).then(() => 'OK', (err: { details: string }) => err.details));
      }
      expect(results).toEqual(Array(20).fill('OK'));
    });

    test('20 users logging in at once, half on each instance, from one address: none refused', async () => {
      const users = Array.from({ length: 20 }, (_, i) => `crowd-${i}`);
      for (const username of users) await a.auth.register({ username, password: PASSWORD });
      const login = () => Promise.all(users.map((username, i) => (i % 2 === 0 ? a : b).auth.login({ username, password: PASSWORD }).then(() => 'OK', (err: { details: string }) => err.details)));
      expect(await login()).toEqual(Array(20).fill('OK'));
      expect(await login()).toEqual(Array(20).fill('OK'));
    });

    test('a session made on one refreshes on the other, and a retried refresh still gets its successor', async () => {
      const t1 = await a.auth.login({ username: 'alice', password: PASSWORD });
      const t2 = await b.auth.refresh({ refreshToken: t1.refreshToken });
      const retried = await a.auth.refresh({ refreshToken: t1.refreshToken });
      expect(retried.refreshToken).toBe(t2.refreshToken);
      const t3 = await a.auth.refresh({ refreshToken: t2.refreshToken });
      await expect(b.auth.validate({ accessToken: t3.accessToken })).resolves.toMatchObject({ active: true });
      await expect(a.auth.validate({ accessToken: t2.accessToken })).resolves.toMatchObject({ active: true });
    });
  });
});

describeWithRedis("an instance whose clock is behind the store's own", (redis) => {
  test('its tokens are valid: auth_time (the store\'s clock) is never later than iat (the instance\'s)', async () => {
    // Redis's clock is the machine's; this instance runs 10 s behind it.
    const server = await startTestServer({ env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: redis().url, AUTH_REDIS_KEY_PREFIX: 'behind:' }, clock: new ManualClock(Date.now() - 10_000) });
    try {
      await server.auth.register({ username: 'alice', password: PASSWORD });
      const login = await server.auth.login({ username: 'alice', password: PASSWORD });
      const claims = JSON.parse(Buffer.from(login.accessToken.split('.')[1]!, 'base64url').toString()) as { iat: number; auth_time: number };
      expect(claims.auth_time).toBeLessThanOrEqual(claims.iat);
      await expect(server.auth.validate({ accessToken: login.accessToken })).resolves.toMatchObject({ active: true });
      const refreshed = await server.auth.refresh({ refreshToken: login.refreshToken });
      await expect(server.auth.validate({ accessToken: refreshed.accessToken })).resolves.toMatchObject({ active: true });
    } finally {
      await server.close();
    }
  });
});
