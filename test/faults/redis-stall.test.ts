import { status } from '@grpc/grpc-js';
import { startRedis, type TestRedis } from '../helpers/redis';
import { describeNeeding } from '../helpers/requires';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';

const STALL_MS = 2500;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Redis stops answering (SIGSTOP) for longer than the reuse interval while clients refresh and log
 * out. ioredis still sends a command that timed out, and Redis runs it when it wakes: the scripts
 * see they run past the caller's deadline (on Redis's clock) and do nothing, so UNAVAILABLE means
 * "not done" and the client's retry after it is the only attempt that counts.
 */
describeNeeding(['redis-server'], 'a Redis stall longer than the reuse interval, then client retries', () => {
  let redis: TestRedis;
  let server: TestServer;
  beforeEach(async () => {
    redis = await startRedis();
    server = await startTestServer({
      env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: redis.url, AUTH_REDIS_COMMAND_TIMEOUT_MS: '200', AUTH_REFRESH_REUSE_INTERVAL: '1s' },
    });
  });
  afterEach(async () => {
    redis.process.kill('SIGCONT');
    await server.close();
    await redis.stop();
  });

  const stall = async (during: () => Promise<void>) => {
    redis.process.kill('SIGSTOP');
    const t0 = Date.now();
    try {
      await during();
      await sleep(Math.max(0, STALL_MS - (Date.now() - t0)));
    } finally {
      redis.process.kill('SIGCONT');
    }
    // Let Redis run what was queued while it slept.
    await sleep(300);
  };

  test('refreshes that timed out during the stall did nothing: the retry rotates, nobody is taken for a thief', async () => {
    const sessions: Array<{ refreshToken: string }> = [];
    for (let i = 0; i < 6; i++) {
      await server.auth.register({ username: `user-${i}`, password: PASSWORD });
      sessions.push(await server.auth.login({ username: `user-${i}`, password: PASSWORD }));
    }
    await stall(async () => {
      // Each client tries three times during the stall, as a retrying SDK would.
      for (let attempt = 0; attempt < 3; attempt++) {
        const codes = await Promise.all(sessions.map((s) => statusOf(server.auth.refresh({ refreshToken: s.refreshToken }))));
        expect(codes).toEqual(Array(6).fill({ code: status.UNAVAILABLE, details: 'session store unavailable' }));
      }
    });
    for (const s of sessions) {
      const next = await server.auth.refresh({ refreshToken: s.refreshToken });
      await expect(server.auth.refresh({ refreshToken: next.refreshToken })).resolves.toMatchObject({ tokenType: 'Bearer' });
    }
    const events = server.logs.entries.map((e) => e.event);
    expect(events).not.toContain('refresh_token_reused');
    expect(events).not.toContain('session_revoked');
    expect(events.filter((e) => e === 'session_refreshed')).toHaveLength(12);
  }, 20_000);

  test('a logout that timed out did nothing: the session still works, and the retried logout ends it', async () => {
    await server.auth.register({ username: 'bob', password: PASSWORD });
    const t = await server.auth.login({ username: 'bob', password: PASSWORD });
    await stall(async () => {
      expect(await statusOf(server.auth.logout({ refreshToken: t.refreshToken }))).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
    });
    await expect(server.auth.validate({ accessToken: t.accessToken })).resolves.toMatchObject({ active: true });
    await server.auth.logout({ refreshToken: t.refreshToken });
    await expect(server.auth.validate({ accessToken: t.accessToken })).resolves.toMatchObject({ active: false });
  }, 20_000);

  test('a login that timed out made no session', async () => {
    await server.auth.register({ username: 'carol', password: PASSWORD });
    await stall(async () => {
      expect(await statusOf(server.auth.login({ username: 'carol', password: PASSWORD }))).toMatchObject({ code: status.UNAVAILABLE });
    });
    const t = await server.auth.login({ username: 'carol', password: PASSWORD });
    const { sessions } = await server.account.listSessions({}, bearer(t.accessToken));
    expect(sessions).toHaveLength(1);
  }, 20_000);
});
