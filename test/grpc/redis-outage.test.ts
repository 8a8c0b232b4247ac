import { status } from '@grpc/grpc-js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { createClient } from '../../src/grpc/client';
import { describeWithRedis, freePort, startRedis } from '../helpers/redis';
import { STORE_CHECK_INTERVAL_MS } from '../../src/run';
import { PASSWORD, registerAndLogin, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/wait';

/** Health as the next store check (on the server's clock) leaves it. */
async function healthAfterCheck(server: TestServer, health: ReturnType<typeof createClient<typeof Health>>, service = ''): Promise<ServingStatus> {
  server.clock.advance(STORE_CHECK_INTERVAL_MS);
  return (await health.check({ service })).status;
}


describeWithRedis('the service on Redis when Redis goes away', () => {
  test('calls fail fast with UNAVAILABLE, health turns NOT_SERVING, and both recover when Redis returns', async () => {
    const redis = await startRedis();
    const server = await startTestServer({ env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: redis.url, AUTH_REDIS_COMMAND_TIMEOUT_MS: '200' } });
    const health = createClient(Health, server.address);
    try {
      const tokens = await registerAndLogin(server);
      await redis.stop();
      // The store guard's bound runs on the server's manual clock, which nobody moves here: an
      // UNAVAILABLE can only come from the Redis client failing at once (no offline queue).
      expect(await statusOf(server.auth.refresh({ refreshToken: tokens.refreshToken }))).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
      expect(await statusOf(server.auth.validate({ accessToken: tokens.accessToken }))).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
      expect(await statusOf(server.auth.login({ username: 'alice', password: PASSWORD }))).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
      await eventually(async () => (await healthAfterCheck(server, health)) === ServingStatus.NOT_SERVING);

      const back = await startRedis(redis.port);
      try {
        await eventually(async () => (await healthAfterCheck(server, health, 'auth.v1.AuthService')) === ServingStatus.SERVING, { timeoutMs: 10_000, intervalMs: 100 });
        // A throw-away Redis lost its data: the old session is gone, so the token is simply unknown.
        expect((await server.auth.validate({ accessToken: tokens.accessToken })).active).toBe(false);
        await expect(server.auth.register({ username: 'bob', password: PASSWORD })).resolves.toBeDefined();
        const events = server.logs.entries.map((e) => e.event);
        expect(events).toContain('store_unavailable');
        // The line names where Redis was looked for and why it could not be used.
        expect(server.logs.events('store_unavailable')[0]!.cause).toEqual({ type: 'Error', message: expect.stringMatching(new RegExp(`^redis 127\\.0\\.0\\.1:${redis.port}: (connect ECONNREFUSED|the connection closed)`)) });
        expect(events).toContain('store_recovered');
      } finally {
        await server.close();
        await back.stop();
      }
    } finally {
      health.close();
    }
  });

  test('starts while Redis is unreachable: NOT_SERVING, calls UNAVAILABLE', async () => {
    const server = await startTestServer({ env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: `redis://127.0.0.1:${await freePort()}`, AUTH_REDIS_COMMAND_TIMEOUT_MS: '200' } });
    const health = createClient(Health, server.address);
    try {
      expect((await health.check({ service: '' })).status).toBe(ServingStatus.NOT_SERVING);
      expect(await statusOf(server.auth.register({ username: 'carol', password: PASSWORD }))).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
    } finally {
      health.close();
      await server.close();
    }
  });
});
