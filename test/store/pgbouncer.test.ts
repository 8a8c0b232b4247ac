import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { newId } from '../../src/core/ids';
import { PostgresStore } from '../../src/store/postgres/postgres-store';
import { startPgBouncer, type TestPgBouncer } from '../helpers/pgbouncer';
import { startPostgres, type TestPostgres } from '../helpers/postgres';
import { describeNeeding } from '../helpers/requires';
import { describeStoreConformance } from './conformance';

/*
 * PgBouncer in transaction mode, with Debian's defaults (1.18): it refuses startup parameters
 * such as statement_timeout, and a server connection serves one transaction, then another
 * client's, so named prepared statements and session settings do not survive. The store works
 * there with no setting at all (it notices the refusal) or with `pgbouncer=true` in the URL.
 */

const random = { bytes: randomBytes };
const TABLES = ['auth_user_secrets', 'auth_sessions', 'auth_users', 'auth_service_accounts', 'auth_assertions', 'auth_attempts', 'auth_rate_windows', 'auth_passkeys', 'auth_ceremonies', 'auth_api_keys'];

describeNeeding(['postgresql', 'pgbouncer'], 'PostgresStore behind PgBouncer in transaction mode', () => {
  let pg: TestPostgres;
  let bouncer: TestPgBouncer;
  let direct: string;
  const stores: PostgresStore[] = [];
  const open = async (url: string, options: { statementTimeoutMs?: number; poolSize?: number; clock?: never } = {}) => {
    const store = new PostgresStore({ connection: { url, poolSize: options.poolSize ?? 4 }, statementTimeoutMs: options.statementTimeoutMs ?? 1000, accessGraceMs: 60_000, maxSessionsPerUser: 100, migrate: 'auto' });
    stores.push(store);
    await store.connect();
    return store;
  };

  beforeAll(async () => {
    pg = await startPostgres();
    bouncer = await startPgBouncer(pg);
    direct = await pg.createDatabase();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await bouncer?.stop();
    await pg?.destroy();
  });

  const truncate = async () => {
    const client = new Client({ connectionString: direct });
    await client.connect();
    await client.query(`TRUNCATE ${TABLES.join(', ')}`);
    await client.end();
  };

  describe.each([
    { setting: 'no setting (the refusal is noticed)', suffix: '' },
    { setting: 'pgbouncer=true', suffix: '?pgbouncer=true' },
  ])('$setting', ({ suffix }) => {
    describeStoreConformance(`through PgBouncer, ${suffix || 'no setting'}`, async ({ clock, accessGraceMs, maxSessionsPerUser }) => {
      const store = new PostgresStore({ connection: { url: bouncer.url(direct) + suffix, poolSize: 4 }, statementTimeoutMs: 1000, accessGraceMs, maxSessionsPerUser, migrate: 'auto', clock });
      await store.connect();
      await truncate();
      return store;
    });

    test('the store knows it is behind a pooler', async () => {
      const store = await open(bouncer.url(direct) + suffix);
      expect(store.target).toEqual({ host: `127.0.0.1:${bouncer.port}`, pooler: true });
    });
  });

  test('directly on PostgreSQL the store prepares named statements and sets timeouts at connect', async () => {
    const store = await open(direct);
    expect(store.target).toEqual({ host: `127.0.0.1:${pg.port}`, pooler: false });
  });

  test('400 operations from 4 stores over PgBouncer at once: no prepared-statement error, every answer right', async () => {
    const url = bouncer.url(direct);
    const all = await Promise.all(Array.from({ length: 4 }, () => open(url, { poolSize: 10 })));
    const results = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const store = all[i % all.length]!;
        const userId = newId(random, 'usr');
        const created = await store.createUser({ id: userId, username: `bulk-${i}-${randomBytes(3).toString('hex')}`, passwordHash: 'h', roles: ['user'], disabled: false, origin: 'api' });
        const sessionId = newId(random, 'ses');
        const session = await all[(i + 1) % all.length]!.createSession({ userId, sessionId, userGeneration: 0, refreshHash: 'h0', refreshTtlMs: 60_000, sessionMaxAgeMs: 600_000, clientAddress: 'a', userAgent: 'u', amr: ['pwd'] });
        const live = await all[(i + 2) % all.length]!.liveSession(userId, sessionId);
        const rotated = await all[(i + 3) % all.length]!.rotateRefreshToken({ userId, sessionId, generation: 0, hash: 'h0', tagged: true, successorHash: 'h1', sealedSuccessor: 's', refreshTtlMs: 60_000, reuseIntervalMs: 1000 });
        return [created, session.outcome, live?.id === userId, rotated.outcome];
      }),
    );
    expect(results).toEqual(Array(100).fill(['created', 'created', true, 'rotated']));
  });

  test('a lock wait inside a transaction is cancelled by the server at the statement timeout (set per transaction), not left waiting', async () => {
    const store = await open(bouncer.url(direct), { statementTimeoutMs: 300 });
    const userId = newId(random, 'usr');
    await store.createUser({ id: userId, username: `locked-${randomBytes(3).toString('hex')}`, passwordHash: 'h', roles: ['user'], disabled: false, origin: 'api' });
    const holder = new Client({ connectionString: direct });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM auth_users WHERE id = $1 FOR UPDATE', [userId]);
      const started = Date.now();
      await expect(store.updateUser(userId, { roles: ['admin'] })).rejects.toMatchObject({ code: 'unavailable' });
      expect(Date.now() - started).toBeLessThan(2000);
      // Nothing of the store's is still waiting for the lock on the server.
      const waiting = await holder.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()");
      expect(waiting.rows[0]).toEqual({ n: 0 });
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
  });
});
