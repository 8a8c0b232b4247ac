import { Client } from 'pg';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { createClient } from '../../src/grpc/client';
import { startPostgres, type TestPostgres } from '../helpers/postgres';
import { runUntilExit, startProcess, type Running } from '../helpers/process';
import { startRedis, type TestRedis } from '../helpers/redis';
import { describeNeeding } from '../helpers/requires';
import { eventually } from '../helpers/wait';

/*
 * A store that refuses the service (a wrong password, no such database, no privilege) will not
 * change its mind by itself: at start-up the service exits 2 saying why, unless AUTH_STORE_WAIT
 * tells it to wait; once running, it says so again and again (with back-off), not once.
 */

async function sql(url: string, text: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

describeNeeding(['postgresql', 'redis-server'], 'a store that refuses the service', () => {
  let pg: TestPostgres;
  let redis: TestRedis;
  const running: Running[] = [];
  beforeAll(async () => {
    pg = await startPostgres();
    await sql(pg.url, 'CREATE ROLE cannot_login NOLOGIN');
    await sql(pg.url, 'CREATE ROLE unprivileged LOGIN');
    redis = await startRedis(undefined, ['--requirepass', 'the-right-one']);
  }, 60_000);
  afterAll(async () => {
    for (const r of running) r.child.kill('SIGKILL');
    await Promise.all(running.map((r) => r.exit));
    await redis?.stop();
    await pg?.destroy();
  });

  const base = () => `postgres://auth@127.0.0.1:${pg.port}`;
  test.each([
    { refused: 'no such database', env: () => ({ AUTH_DATABASE_URL: `${base()}/nosuchdb` }), says: /^the database named in AUTH_DATABASE_URL does not exist \(SQLSTATE 3D000\)/ },
    { refused: 'a role that may not log in', env: () => ({ AUTH_DATABASE_URL: `postgres://cannot_login@127.0.0.1:${pg.port}/postgres` }), says: /^the database refused the user or password \(SQLSTATE 28000\)/ },
    { refused: 'no privilege to create the schema', env: () => ({ AUTH_DATABASE_URL: `postgres://unprivileged@127.0.0.1:${pg.port}/postgres` }), says: /^the database user lacks a privilege the service needs \(SQLSTATE 42501\): permission denied for schema public/ },
    { refused: 'a wrong Redis password', env: () => ({ AUTH_REDIS_URL: `redis://:wrong@127.0.0.1:${redis.port}` }), says: /^Redis refused the credentials \(WRONGPASS\)/ },
  ])('$refused: start-up stops with exit 2 and one line saying why and what to do', async ({ env, says }) => {
    const { code, stderr, lines } = await runUntilExit(env());
    expect(code).toBe(2);
    const fatal = lines.find((l) => l.event === 'startup_failed')!;
    expect(fatal.msg).toMatch(says);
    expect(fatal.msg).toMatch(/\(set AUTH_STORE_WAIT=true to start anyway and keep trying\)$/);
    expect(stderr).not.toContain('wrong'); // the password is never shown
  });

  test('with AUTH_STORE_WAIT=true it starts NOT_SERVING, says why at 1, 2, 4, 8 checks, and serves once the database is there', async () => {
    const instance = await startProcess({ AUTH_DATABASE_URL: `${base()}/comes_later`, AUTH_STORE_WAIT: 'true', AUTH_LOG_LEVEL: 'info' });
    running.push(instance);
    const health = createClient(Health, String(instance.started.address));
    expect((await health.check({ service: '' })).status).toBe(ServingStatus.NOT_SERVING);
    await eventually(() => instance.lines.filter((l) => l.event === 'store_refused').length >= 4, { timeoutMs: 15_000, intervalMs: 100 });
    const refused = instance.lines.filter((l) => l.event === 'store_refused');
    expect(refused.slice(0, 4).map((l) => l.checks)).toEqual([1, 2, 4, 8]);
    expect(refused[0]!.msg).toMatch(/^store refuses the service: the database named in AUTH_DATABASE_URL does not exist/);
    await sql(pg.url, 'CREATE DATABASE comes_later');
    await eventually(async () => (await health.check({ service: '' })).status === ServingStatus.SERVING, { timeoutMs: 10_000, intervalMs: 100 });
    health.close();
  }, 40_000);
});
