import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { generateEcPem } from '../../src/core/keys';
import { createClient } from '../../src/grpc/client';
import { startPgBouncer, type TestPgBouncer } from '../helpers/pgbouncer';
import { startPostgres, type TestPostgres } from '../helpers/postgres';
import { startProcess, type Running } from '../helpers/process';
import { sample, scrape } from '../helpers/metrics';
import { describeNeeding } from '../helpers/requires';
import { PASSWORD } from '../helpers/server';

/*
 * The SRE trial's set-up: two instances on PostgreSQL through Debian's PgBouncer in transaction
 * mode with its defaults and nothing set on the service's side, 20 workers registering, logging
 * in, refreshing and validating. It used to give thousands of prepared-statement errors, health
 * flapping, and correct passwords refused as throttled (in-flight logins never released).
 */
describeNeeding(['postgresql', 'pgbouncer'], 'two instances through PgBouncer (transaction mode, no setting), under load', () => {
  let pg: TestPostgres;
  let bouncer: TestPgBouncer;
  const running: Running[] = [];
  beforeAll(async () => {
    pg = await startPostgres();
    bouncer = await startPgBouncer(pg);
  }, 60_000);
  afterAll(async () => {
    for (const r of running) r.child.kill('SIGKILL');
    await Promise.all(running.map((r) => r.exit));
    await bouncer?.stop();
    await pg?.destroy();
  });

  test('20 workers for 5 s: every call answered right, health SERVING throughout, no login refused as throttled', async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'auth-pgb-')), 'signing.pem');
    writeFileSync(keyFile, generateEcPem());
    const env = {
      AUTH_DATABASE_URL: bouncer.url(await pg.createDatabase()),
      AUTH_SIGNING_KEY_FILE: keyFile,
      AUTH_LOG_LEVEL: 'info',
      AUTH_REGISTER_PER_ADDRESS: '1000000',
      AUTH_REGISTER_PER_MINUTE: '1000000',
      AUTH_METRICS_ADDRESS: '127.0.0.1:0',
    };
    for (let i = 0; i < 2; i++) running.push(await startProcess(env));
    const clients = running.map((r) => ({ auth: createClient(AuthService, String(r.started.address)), health: createClient(Health, String(r.started.address)) }));

    const counts = { register: 0, login: 0, refresh: 0, validate: 0 };
    const errors = new Map<string, number>();
    const healthSeen = new Set<number>();
    let stop = false;
    const worker = async (w: number) => {
      const c = clients[w % 2]!;
      const username = `worker${w}`;
      await c.auth.register({ username, password: PASSWORD });
      counts.register++;
      let i = 0;
      while (!stop) {
        try {
          const pair = await c.auth.login({ username, password: PASSWORD });
          counts.login++;
          // Each refresh on the other instance, then the token checked on this one.
          const other = clients[(w + ++i) % 2]!;
          const next = await other.auth.refresh({ refreshToken: pair.refreshToken });
          counts.refresh++;
          if (!(await c.auth.validate({ accessToken: next.accessToken })).active) throw new Error('a fresh token is not active');
          counts.validate++;
        } catch (e) {
          const key = `${(e as { code?: number }).code} ${(e as Error).message}`;
          errors.set(key, (errors.get(key) ?? 0) + 1);
        }
      }
    };
    const watch = (async () => {
      while (!stop) {
        for (const c of clients) healthSeen.add((await c.health.check({ service: '' })).status);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const workers = Array.from({ length: 20 }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, 5000));
    stop = true;
    await Promise.all([...workers, watch]);
    const throttled = running.flatMap((r) => r.lines).filter((l) => l.event === 'login_throttled').length;
    // eslint-disable-next-line no-console
    console.log(`through PgBouncer (transaction mode, no setting): ${JSON.stringify(counts)} in 5 s, errors ${JSON.stringify(Object.fromEntries(errors))}, health ${[...healthSeen].map((s) => ServingStatus[s]).join(',')}, logins throttled ${throttled}`);
    expect(Object.fromEntries(errors)).toEqual({});
    expect([...healthSeen]).toEqual([ServingStatus.SERVING]);
    expect(throttled).toBe(0);
    expect(counts.refresh).toBeGreaterThan(20);
    for (const r of running) {
      expect(r.lines.filter((l) => l.event === 'store_pooler_detected')).toHaveLength(1);
      const metrics = await scrape(Number(r.lines.find((l) => l.event === 'metrics_listening')!.port));
      expect(sample(metrics, `auth_postgres_writer_info{host="127.0.0.1:${bouncer.port}",pooler="true"}`)).toBe(1);
    }
    for (const c of clients) {
      c.auth.close();
      c.health.close();
    }
  }, 60_000);
});
