import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { generateEcPem } from '../../src/core/keys';
import { createClient } from '../../src/grpc/client';
import { startPostgres, type TestPostgres } from '../helpers/postgres';
import { startProcess, type Running } from '../helpers/process';
import { sample, scrape } from '../helpers/metrics';
import { describeNeeding } from '../helpers/requires';
import { PASSWORD } from '../helpers/server';
import { eventually } from '../helpers/wait';

/*
 * A primary and a streaming standby made by pg_basebackup, and the service given both in libpq's
 * multi-host form. When the primary dies, or stops taking writes, and the standby is promoted, the
 * running service finds the new primary by itself: no restart, no new URL.
 */

async function sql<T extends Record<string, unknown>>(url: string, text: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/** Waits until the standby has replayed everything the primary has written so far. */
async function caughtUp(primary: string, standby: string): Promise<void> {
  const [{ lsn }] = await sql<{ lsn: string }>(primary, 'SELECT pg_current_wal_lsn()::text AS lsn');
  await eventually(async () => (await sql<{ ok: boolean }>(standby, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn AS ok`))[0]!.ok, { timeoutMs: 20_000, intervalMs: 50 });
}

describeNeeding(['postgresql'], 'PostgreSQL failover to a promoted standby, with no restart', () => {
  const running: Running[] = [];
  const servers: TestPostgres[] = [];
  afterAll(async () => {
    for (const r of running) r.child.kill('SIGKILL');
    await Promise.all(running.map((r) => r.exit));
    await Promise.all(servers.map((s) => s.destroy()));
  });

  test.each([
    { how: 'the primary is killed', demote: (p: TestPostgres) => p.stop({ kill: true }), comesBack: true },
    {
      how: 'the primary stays up but turns read-only',
      demote: async (p: TestPostgres) => {
        await sql(p.url, 'ALTER SYSTEM SET default_transaction_read_only = on');
        await sql(p.url, 'SELECT pg_reload_conf()');
        // Connections already open keep their setting: end them, as an operator fencing it would.
        await sql(p.url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'grpc-auth'");
      },
      comesBack: false,
    },
  ])('$how and the standby promoted: the service writes to the new primary within seconds, every session intact', async ({ demote, comesBack }) => {
    const primary = await startPostgres();
    servers.push(primary);
    const dbUrl = await primary.createDatabase();
    const standby = await startPostgres({ standbyOf: primary });
    servers.push(standby);
    const db = new URL(dbUrl).pathname;
    const url = `postgres://auth@127.0.0.1:${primary.port},127.0.0.1:${standby.port}${db}?target_session_attrs=read-write`;

    const keyFile = join(mkdtempSync(join(tmpdir(), 'auth-failover-')), 'signing.pem');
    writeFileSync(keyFile, generateEcPem());
    const instance = await startProcess({ AUTH_DATABASE_URL: url, AUTH_SIGNING_KEY_FILE: keyFile, AUTH_LOG_LEVEL: 'info', AUTH_DATABASE_STATEMENT_TIMEOUT_MS: '250', AUTH_STORE_TIMEOUT: '1s', AUTH_METRICS_ADDRESS: '127.0.0.1:0' });
    running.push(instance);
    const auth = createClient(AuthService, String(instance.started.address));
    const health = createClient(Health, String(instance.started.address));
    const sessions = [];
    for (let i = 0; i < 5; i++) {
      await auth.register({ username: `fo${i}`, password: PASSWORD });
      sessions.push(await auth.login({ username: `fo${i}`, password: PASSWORD }));
    }
    await caughtUp(primary.url, standby.url);

    await demote(primary);
    await eventually(async () => (await health.check({ service: '' })).status === ServingStatus.NOT_SERVING, { timeoutMs: 5000, intervalMs: 50 });
    const promotedAt = Date.now();
    await standby.promote();
    await eventually(async () => (await auth.register({ username: `after${Date.now()}`, password: PASSWORD }).then(() => true, () => false)), { timeoutMs: 15_000, intervalMs: 50 });
    const writingAfterMs = Date.now() - promotedAt;
    await eventually(async () => (await health.check({ service: '' })).status === ServingStatus.SERVING, { timeoutMs: 5000, intervalMs: 50 });
    const servingAfterMs = Date.now() - promotedAt;

    // Every session made on the old primary refreshes on the new one; the users log in.
    for (const s of sessions) await expect(auth.refresh({ refreshToken: s.refreshToken })).resolves.toMatchObject({ tokenType: 'Bearer' });
    await expect(auth.login({ username: 'fo0', password: PASSWORD })).resolves.toMatchObject({ tokenType: 'Bearer' });
    const switched = instance.lines.filter((l) => l.event === 'store_switched');
    // eslint-disable-next-line no-console
    console.log(`failover: writes on the promoted standby ${writingAfterMs} ms after pg_promote, SERVING after ${servingAfterMs} ms; logged ${JSON.stringify(switched.map((l) => `${String(l.from)} -> ${String(l.to)}`))}`);
    expect(switched.map((l) => l.to)).toEqual([`127.0.0.1:${standby.port}`]);
    expect(writingAfterMs).toBeLessThan(10_000);
    const metrics = await scrape(Number(instance.lines.find((l) => l.event === 'metrics_listening')!.port));
    expect(sample(metrics, 'auth_postgres_failovers_total')).toBe(1);
    expect(sample(metrics, `auth_postgres_writer_info{host="127.0.0.1:${standby.port}",pooler="false"}`)).toBe(1);
    if (comesBack) {
      // The old primary started again comes back read-write (nothing told it it was replaced):
      // a running instance stays with the host it writes to, but one started now would take the
      // first writable host of the URL. That is why the old primary must be fenced (docs/postgresql.md).
      await primary.start();
      await auth.register({ username: 'after-return', password: PASSWORD });
      const onHost = (port: number) => sql(`postgres://auth@127.0.0.1:${port}${db}`, "SELECT username FROM auth_users WHERE username = 'after-return'");
      expect(await onHost(standby.port)).toEqual([{ username: 'after-return' }]);
      expect(await onHost(primary.port)).toEqual([]);
    }
    auth.close();
    health.close();
  }, 90_000);
});
