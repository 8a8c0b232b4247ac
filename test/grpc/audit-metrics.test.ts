import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { metricNames, sample, scrape, series } from '../helpers/metrics';
import { PASSWORD, registerAndLogin, startTestServer, statusOf, type TestServer } from '../helpers/server';

describe('audit events', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  const events = (name: string) => server.logs.entries.filter((e) => e.event === name);

  test('each scenario emits its event with the documented fields, and only those', async () => {
    const { userId } = await server.auth.register({ username: 'alice', password: PASSWORD });
    await statusOf(server.auth.login({ username: 'alice', password: 'not the right password' }));
    for (let i = 0; i < 4; i++) await statusOf(server.auth.login({ username: 'alice', password: 'not the right password' }));
    await statusOf(server.auth.login({ username: 'alice', password: 'not the right password' }));
    server.clock.advance(2000);
    const first = await server.auth.login({ username: 'alice', password: PASSWORD });
    const second = await server.auth.refresh({ refreshToken: first.refreshToken });
    await server.auth.refresh({ refreshToken: first.refreshToken }); // a retry inside the interval
    server.clock.advance(11_000);
    await statusOf(server.auth.refresh({ refreshToken: first.refreshToken })); // re-use
    const other = await server.auth.login({ username: 'alice', password: PASSWORD });
    await server.auth.logout({ refreshToken: other.refreshToken });
    void second;

    const call = { reqId: expect.any(String), clientAddress: '127.0.0.1', method: expect.stringMatching(/^\/auth\.v1\.AuthService\//) };
    const ses = expect.stringMatching(/^ses_/);
    const table: Array<[string, Record<string, unknown>, string]> = [
      ['key_loaded', { kid: server.app.keys.signing.kid, alg: 'ES256', signing: true }, 'info'],
      ['user_registered', { ...call, userId }, 'info'],
      ['login_failed', { ...call, userId }, 'info'],
      ['login_throttled', { ...call }, 'warn'],
      ['login_succeeded', { ...call, userId }, 'info'],
      ['session_created', { ...call, userId, sessionId: ses }, 'info'],
      ['session_refreshed', { ...call, userId, sessionId: ses }, 'info'],
      ['refresh_retried', { ...call, userId, sessionId: ses }, 'info'],
      ['refresh_token_reused', { ...call, userId, sessionId: ses }, 'warn'],
      ['session_revoked', { ...call, userId, sessionId: ses, reason: 'refresh_token_reuse' }, 'warn'],
      ['logout', { ...call, userId, sessionId: ses }, 'info'],
    ];
    for (const [name, fields, level] of table) {
      expect(events(name).length).toBeGreaterThan(0);
      expect(events(name)[0]).toMatchObject({ ...fields, level });
    }
    expect(events('login_failed')).toHaveLength(5);
    expect(events('login_throttled')).toHaveLength(1);
  });
});

describe('metrics', () => {
  test('every metric the service declares is in docs/observability.md\'s table, and every one there is declared', async () => {
    const server = await startTestServer({ env: { AUTH_METRICS_ADDRESS: '127.0.0.1:0' } });
    try {
      const declared = metricNames(await scrape(server.running.metricsPort!)).filter((n) => n.startsWith('auth_'));
      const table = readFileSync(join(__dirname, '..', '..', 'docs', 'observability.md'), 'utf8').split('## Metrics')[1]!.split('\n## ')[0]!;
      const documented = [...table.matchAll(/^\| ((?:`auth_[a-z_]+(?:\{[^}]*\})?`(?:, )?)+) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`(auth_[a-z_]+)/g)].map((n) => n[1]!));
      expect([...new Set(documented)].sort()).toEqual([...new Set(declared)].sort());
    } finally {
      await server.close();
    }
  });

  test('off unless AUTH_METRICS_ADDRESS is set', async () => {
    const server = await startTestServer();
    try {
      expect(server.running.metricsPort).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  test('the endpoint serves Prometheus text, and the figures move as calls are made', async () => {
    const server = await startTestServer({ env: { AUTH_METRICS_ADDRESS: '127.0.0.1:0' } });
    try {
      const port = server.running.metricsPort!;
      const before = await scrape(port);
      expect(before).toContain('# TYPE auth_rpc_calls_total counter');
      expect(before).toContain('process_cpu_user_seconds_total');
      expect(before).toContain('nodejs_eventloop_lag_seconds');
      expect(sample(before, 'auth_sessions_live')).toBe(0);
      const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
      expect(sample(before, `auth_build_info{version="${version}",node="${process.version}",store="memory"}`)).toBe(1);

      const tokens = await registerAndLogin(server);
      await statusOf(server.auth.login({ username: 'alice', password: 'not the right password' }));
      await server.auth.refresh({ refreshToken: tokens.refreshToken });
      server.clock.advance(11_000);
      await statusOf(server.auth.refresh({ refreshToken: tokens.refreshToken }));

      const after = await scrape(port);
      expect(sample(after, 'auth_rpc_calls_total{method="/auth.v1.AuthService/Login",code="OK"}')).toBe(1);
      expect(sample(after, 'auth_rpc_calls_total{method="/auth.v1.AuthService/Login",code="UNAUTHENTICATED"}')).toBe(1);
      expect(sample(after, 'auth_rpc_calls_total{method="/auth.v1.AuthService/Refresh",code="UNAUTHENTICATED"}')).toBe(1);
      expect(sample(after, 'auth_rpc_duration_seconds_count{method="/auth.v1.AuthService/Login"}')).toBe(2);
      expect(sample(after, 'auth_logins_failed_total')).toBe(1);
      expect(sample(after, 'auth_refresh_reuse_detected_total')).toBe(1);
      expect(sample(after, 'auth_events_total{event="session_created"}')).toBe(1);
      // The re-used session was revoked: nothing of it is kept, so nothing is live.
      expect(sample(after, 'auth_sessions_live')).toBe(0);
      expect(series(after, 'auth_store_errors_total')).toEqual([]);
      // Each store operation's latency, by the Store interface's method names.
      expect(sample(after, 'auth_store_operation_duration_seconds_count{operation="createSession"}')).toBe(1);
      expect(sample(after, 'auth_store_operation_duration_seconds_count{operation="rotateRefreshToken"}')).toBe(2);
      expect(sample(after, 'auth_serving')).toBe(1);
      const { keys } = JSON.parse((await server.auth.getJwks({})).jwksJson) as { keys: Array<{ kid: string }> };
      expect(series(after, 'auth_signing_key_info')).toEqual([[`{kid="${keys[0]!.kid}",alg="ES256"}`, 1]]);
      expect(series(after, 'auth_password_hashes')).toEqual([
        ['{state="running"}', 0],
        ['{state="queued"}', 0],
      ]);
      // The PostgreSQL metrics are declared on every store, with no series on the others.
      expect(series(after, 'auth_postgres_pool_connections')).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
