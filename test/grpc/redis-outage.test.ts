import { status } from '@grpc/grpc-js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { createUnaryClient } from '../../src/grpc/client';
import { describeWithRedis, freePort, startRedis } from '../helpers/redis';
import { PASSWORD, registerAndLogin, startTestServer, statusOf } from '../helpers/server';

async function eventually(check: () => Promise<void>, ms = 5000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    try {
      await check();
      return Date.now() - t0;
    } catch (err) {
      if (Date.now() - t0 > ms) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describeWithRedis('the service on Redis when Redis goes away', () => {
  test('calls fail fast with UNAVAILABLE, health turns NOT_SERVING, and both recover when Redis returns', async () => {
    const redis = await startRedis();
    const server = await startTestServer({ env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: redis.url, AUTH_REDIS_COMMAND_TIMEOUT_MS: '200' } });
    const health = createUnaryClient(Health, server.address);
    try {
      const tokens = await registerAndLogin(server);
      await redis.stop();
      const t0 = Date.now();
      expect(await statusOf(server.auth.refresh({ refreshToken: tokens.refreshToken }))).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
      expect(await statusOf(server.auth.validate({ accessToken: tokens.accessToken }))).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
      expect(await statusOf(server.auth.login({ username: 'alice', password: PASSWORD }))).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
      expect(Date.now() - t0).toBeLessThan(1000);
      await eventually(async () => expect((await health.check({ service: '' })).status).toBe(ServingStatus.NOT_SERVING));

      const back = await startRedis(redis.port);
      try {
        await eventually(async () => expect((await health.check({ service: 'auth.v1.AuthService' })).status).toBe(ServingStatus.SERVING));
        // A throw-away Redis lost its data: the old session is gone, so the token is simply unknown.
        expect((await server.auth.validate({ accessToken: tokens.accessToken })).active).toBe(false);
        await expect(server.auth.register({ username: 'bob', password: PASSWORD })).resolves.toBeDefined();
        const events = server.logs.entries.map((e) => e.event);
        expect(events).toContain('store_unavailable');
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
    const health = createUnaryClient(Health, server.address);
    try {
      expect((await health.check({ service: '' })).status).toBe(ServingStatus.NOT_SERVING);
      expect(await statusOf(server.auth.register({ username: 'carol', password: PASSWORD }))).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
    } finally {
      health.close();
      await server.close();
    }
  });
});
