import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { ManualClock } from '../../src/clock';
import { newId } from '../../src/core/ids';
import { knownMigrations, migrate, schemaState } from '../../src/store/postgres/migrations';
import { LIVE_BATCH, PostgresStore, SWEEP_BATCH, type PostgresStoreOptions } from '../../src/store/postgres/postgres-store';
import { StoreSetupError } from '../../src/store/store';
import { ACCOUNT_POLICY, ADDRESS_POLICY } from '../../src/core/login-throttle';
import { describeWithPostgres, recordStatements, startPostgres, type TestPostgres } from '../helpers/postgres';
import { describeNeeding } from '../helpers/requires';
import { createTestCa, type TestCa } from '../helpers/tls';
import { eventually } from '../helpers/wait';
import { describeStoreConformance, T0 } from './conformance';

const HOUR = 3_600_000;
const random = { bytes: randomBytes };

type Options = Partial<Omit<PostgresStoreOptions, 'connection'>> & { poolSize?: number };

const open = async (url: string, options: Options = {}) => {
  const { poolSize = 5, ...rest } = options;
  const store = new PostgresStore({ connection: { url, poolSize }, statementTimeoutMs: 500, accessGraceMs: 60_000, maxSessionsPerUser: 100, migrate: 'auto', ...rest });
  await store.connect();
  return store;
};

const TABLES = ['auth_user_secrets', 'auth_sessions', 'auth_users', 'auth_service_accounts', 'auth_assertions', 'auth_attempts', 'auth_rate_windows', 'auth_passkeys', 'auth_ceremonies', 'auth_api_keys'];

async function truncate(url: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`TRUNCATE ${TABLES.join(', ')}`);
  } finally {
    await client.end();
  }
}

/** A user with one session. */
async function userWithSession(store: PostgresStore, options: { maxAgeMs?: number; refreshTtlMs?: number } = {}) {
  const userId = newId(random, 'usr');
  await store.createUser({ id: userId, username: `u${randomBytes(4).toString('hex')}`, passwordHash: 'h', roles: ['r'], disabled: false, origin: 'api' });
  const sessionId = newId(random, 'ses');
  const created = await store.createSession({ userId, sessionId, userGeneration: 0, refreshHash: 'h0', refreshTtlMs: options.refreshTtlMs ?? HOUR, sessionMaxAgeMs: options.maxAgeMs ?? 24 * HOUR, clientAddress: 'a', amr: ['pwd'], userAgent: 'u' });
  return { userId, sessionId, created };
}

describeWithPostgres('PostgresStore', (pg) => {
  let url: string;
  beforeAll(async () => {
    url = await pg().createDatabase();
  });

  describeStoreConformance('postgres', async ({ clock, accessGraceMs, maxSessionsPerUser }) => {
    const store = await open(url, { clock, accessGraceMs, maxSessionsPerUser });
    await truncate(url);
    return store;
  });

  test('on its own clock, the store stamps the database’s time, whatever the instance’s', async () => {
    const store = await open(url);
    try {
      const before = Date.now();
      const { created } = await userWithSession(store);
      expect(created.outcome).toBe('created');
      if (created.outcome === 'created') {
        expect(created.now).toBeGreaterThanOrEqual(before - 1000);
        expect(created.now).toBeLessThanOrEqual(Date.now() + 1000);
        expect(created.expiresAt - created.now).toBe(24 * HOUR);
      }
    } finally {
      await store.close();
    }
  });

  test('a login\'s begin is one read and one compare-and-set, no transaction', async () => {
    const store = await open(url);
    const { sent, spy } = recordStatements();
    try {
      const key = `acct:${randomBytes(4).toString('hex')}`;
      // No row; a row with a failure (the attempt before failed); a row with a failure and nothing in flight (released): each a read and a write.
      for (const end of [undefined, 'failed', 'released'] as const) {
        if (end) await store.endAttempt(key, ACCOUNT_POLICY, end);
        sent.length = 0;
        expect(await store.beginAttempt(key, ACCOUNT_POLICY)).toEqual({ allowed: true });
        expect(sent.map((q) => q.trim().split(/\s+/)[0])).toEqual(['SELECT', end === undefined ? 'INSERT' : 'UPDATE']);
      }
    } finally {
      spy.mockRestore();
      await store.close();
    }
  });

  /**
   * Two begins that both read the key's row before either writes (held at a barrier): one
   * compare-and-set wins, the other reads again and counts the first, so nothing is lost; so too
   * when a success's DELETE lands between a begin's read and its write.
   */
  test.each([
    { name: 'no row yet (INSERT)', before: [] as Array<'begin' | 'failed'>, between: undefined, inFlight: 2 },
    { name: 'a row with a failure (UPDATE)', before: ['failed'] as Array<'begin' | 'failed'>, between: undefined, inFlight: 2 },
    // The clock stands still: both write the same times, and only the count in flight tells their writes apart.
    { name: 'a row with one attempt in flight, at the same millisecond (UPDATE)', before: ['begin'] as Array<'begin' | 'failed'>, between: undefined, inFlight: 3 },
    { name: "a success's DELETE between the read and the write", before: ['begin'] as Array<'begin' | 'failed'>, between: 'succeeded' as const, inFlight: 1 },
  ])("begins racing on one key's row, $name: no reservation is lost", async ({ before, between, inFlight }) => {
    const store = await open(url, { clock: new ManualClock(T0), statementTimeoutMs: 5_000 });
    const key = `acct:${randomBytes(4).toString('hex')}`;
    const swaps: boolean[] = [];
    const target = store as unknown as { swapAttempt: (...args: unknown[]) => Promise<boolean> };
    const swap = target.swapAttempt.bind(store);
    try {
      for (const step of before) {
        await store.beginAttempt(key, ACCOUNT_POLICY);
        if (step === 'failed') await store.endAttempt(key, ACCOUNT_POLICY, 'failed');
      }
      const racers = between ? 1 : 2;
      let arrived = 0;
      let release: () => void = () => {};
      const barrier = new Promise<void>((resolve) => (release = resolve));
      jest.spyOn(target, 'swapAttempt').mockImplementation(async (...args: unknown[]) => {
        if (swaps.length < racers) {
          if (++arrived === racers) {
            if (between) await store.endAttempt(key, ACCOUNT_POLICY, between);
            release();
          }
          await barrier;
        }
        const won = await swap(...args);
        swaps.push(won);
        return won;
      });
      const grants = await Promise.all(Array.from({ length: racers }, () => store.beginAttempt(key, ACCOUNT_POLICY)));
      expect(grants).toEqual(Array(racers).fill({ allowed: true }));
      // The first swaps: one won and one lost (two racers), or the one lost to the DELETE; the retry won.
      expect(swaps).toEqual(between ? [false, true] : expect.arrayContaining([true, false, true]));
      expect(swaps).toHaveLength(racers + 1);
      const sql = new Client({ connectionString: url });
      await sql.connect();
      const row = (await sql.query<{ n: number }>('SELECT in_flight AS n FROM auth_attempts WHERE key = $1', [key]).finally(() => sql.end())).rows[0]!.n;
      expect(row).toBe(inFlight);
    } finally {
      jest.restoreAllMocks();
      await store.close();
    }
  });

  test('40 begins at once on one key (compare-and-set, lost races, then the row\'s lock) let through the 5 the account policy allows', async () => {
    const store = await open(url, { clock: new ManualClock(T0), statementTimeoutMs: 5_000 });
    try {
      const key = `acct:${randomBytes(4).toString('hex')}`;
      const grants = await Promise.all(Array.from({ length: 40 }, () => store.beginAttempt(key, ACCOUNT_POLICY)));
      expect(grants.filter((g) => g.allowed)).toHaveLength(5);
      expect(grants.filter((g) => !g.allowed)).toEqual(Array(35).fill({ allowed: false, retryAfterMs: 1000 }));
    } finally {
      await store.close();
    }
  });

  test('a guarded begin reads the address with the account in one statement; 40 at once from a held-back address are all refused and write nothing', async () => {
    const store = await open(url, { clock: new ManualClock(T0), statementTimeoutMs: 5_000 });
    const { sent, spy } = recordStatements();
    try {
      const key = `acct:${randomBytes(4).toString('hex')}`;
      const guard = { key: `addr:${randomBytes(4).toString('hex')}`, policy: ADDRESS_POLICY };
      expect(await store.beginGuardedAttempt(key, ACCOUNT_POLICY, guard)).toEqual({ allowed: true });
      expect(sent.map((q) => q.trim().split(/\s+/)[0])).toEqual(['SELECT', 'INSERT']);
      await store.endAttempt(key, ACCOUNT_POLICY, 'succeeded');
      for (let i = 0; i < ADDRESS_POLICY.freeFailures; i++) await store.recordFailure(guard.key, ADDRESS_POLICY);
      sent.length = 0;
      const grants = await Promise.all(Array.from({ length: 40 }, () => store.beginGuardedAttempt(key, ACCOUNT_POLICY, guard)));
      expect(grants).toEqual(Array(40).fill({ allowed: false, retryAfterMs: 1000 }));
      expect(sent.filter((q) => !q.trim().startsWith('SELECT'))).toEqual([]);
      const sql = new Client({ connectionString: url });
      await sql.connect();
      const rows = (await sql.query('SELECT 1 FROM auth_attempts WHERE key = $1', [key]).finally(() => sql.end())).rows;
      expect(rows).toEqual([]);
    } finally {
      spy.mockRestore();
      await store.close();
    }
  });

  test("a guarded begin that loses its compare-and-set reads the address again: failures it gained meanwhile refuse the retry", async () => {
    const store = await open(url, { clock: new ManualClock(T0), statementTimeoutMs: 5_000 });
    const key = `acct:${randomBytes(4).toString('hex')}`;
    const guard = { key: `addr:${randomBytes(4).toString('hex')}`, policy: ADDRESS_POLICY };
    const target = store as unknown as { swapAttempt: (...args: unknown[]) => Promise<boolean> };
    const swap = target.swapAttempt.bind(store);
    const swaps: boolean[] = [];
    let arrived = 0;
    let release: () => void = () => {};
    const barrier = new Promise<void>((resolve) => (release = resolve));
    jest.spyOn(target, 'swapAttempt').mockImplementation(async (...args: unknown[]) => {
      if (swaps.length < 2) {
        // Both have read the two rows; the address is held back before either writes.
        if (++arrived === 2) {
          for (let i = 0; i < ADDRESS_POLICY.freeFailures; i++) await store.recordFailure(guard.key, ADDRESS_POLICY);
          release();
        }
        await barrier;
      }
      const won = await swap(...args);
      swaps.push(won);
      return won;
    });
    try {
      const grants = await Promise.all([0, 1].map(() => store.beginGuardedAttempt(key, ACCOUNT_POLICY, guard)));
      // One insert won; the other found the row there, read both rows again and met the address's failures.
      expect([...swaps].sort()).toEqual([false, true]);
      expect(grants).toEqual(expect.arrayContaining([{ allowed: true }, { allowed: false, retryAfterMs: 1000 }]));
    } finally {
      jest.restoreAllMocks();
      await store.close();
    }
  });

  /*
   * A sweep that waits for a row another transaction is making live again (a counter reserved
   * again, a session rotated) leaves it: the DELETE re-checks its condition on the new version.
   */
  test.each([
    {
      name: 'a throttle counter',
      async setup(_store: PostgresStore, sql: Client) {
        const key = `acct:${randomBytes(4).toString('hex')}`;
        await sql.query('INSERT INTO auth_attempts (key, failures, in_flight, last_failure_at, expires_at) VALUES ($1, 1, 0, 0, 1)', [key]);
        return { revive: { text: 'UPDATE auth_attempts SET expires_at = 9000000000000000 WHERE key = $1', values: [key] }, count: { text: 'SELECT count(*) AS n FROM auth_attempts WHERE key = $1', values: [key] } };
      },
    },
    {
      name: 'a session',
      async setup(store: PostgresStore, sql: Client) {
        const { sessionId } = await userWithSession(store);
        await sql.query('UPDATE auth_sessions SET purge_at = 1 WHERE id = $1', [sessionId]);
        return { revive: { text: 'UPDATE auth_sessions SET purge_at = 9000000000000000 WHERE id = $1', values: [sessionId] }, count: { text: 'SELECT count(*) AS n FROM auth_sessions WHERE id = $1', values: [sessionId] } };
      },
    },
  ])('the sweeper leaves $name made live again while it waited for its row', async ({ setup }) => {
    const store = await open(url, { statementTimeoutMs: 5_000 });
    const holder = new Client({ connectionString: url });
    await holder.connect();
    try {
      const { revive, count } = await setup(store, holder);
      await holder.query('BEGIN');
      await holder.query(revive.text, revive.values);
      const sweeping = store.sweep();
      // The sweep's DELETE waits for the row's lock now.
      const watcher = new Client({ connectionString: url });
      await watcher.connect();
      try {
        await eventually(async () => expect(Number((await watcher.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM auth_%'")).rows[0].n)).toBe(1));
      } finally {
        await watcher.end();
      }
      await holder.query('COMMIT');
      await sweeping;
      expect(Number((await holder.query(count.text, count.values)).rows[0].n)).toBe(1);
    } finally {
      await holder.end();
      await store.close();
    }
  });

  test('a login deletes the rows of the user’s ended sessions, and ends the oldest past the cap, even with 20 logins at once', async () => {
    const clock = new ManualClock(T0);
    const store = await open(url, { clock, maxSessionsPerUser: 3 });
    const sql = new Client({ connectionString: url });
    await sql.connect();
    try {
      const { userId } = await userWithSession(store, { maxAgeMs: HOUR });
      const rows = async () => Number((await sql.query<{ n: string }>('SELECT count(*) AS n FROM auth_sessions WHERE user_id = $1', [userId])).rows[0]!.n);
      clock.advance(HOUR);
      const login = () =>
        store.createSession({ userId, sessionId: newId(random, 'ses'), userGeneration: 0, refreshHash: 'h', refreshTtlMs: HOUR, sessionMaxAgeMs: 24 * HOUR, clientAddress: '10.0.0.1', userAgent: 't', amr: ['pwd'] });
      await login();
      expect(await rows()).toBe(1); // the ended one is gone from the table, not only from the listing
      // Each login locks the user's row first, so each sees the sessions the ones before it committed.
      const results = await Promise.all(Array.from({ length: 20 }, login));
      expect(results.every((r) => r.outcome === 'created')).toBe(true);
      expect(await rows()).toBe(3);
    } finally {
      await sql.end();
      await store.close();
    }
  });

  test('a session’s rows stay the same however often it rotates: 1,000 rotations, one session row, no other row', async () => {
    const clock = new ManualClock(T0);
    const store = await open(url, { clock });
    try {
      await truncate(url);
      const { userId, sessionId } = await userWithSession(store);
      const rotate = (g: number) =>
        store.rotateRefreshToken({ userId, sessionId, generation: g, hash: `h${g}`, successorHash: `h${g + 1}`, sealedSuccessor: 's'.repeat(120), refreshTtlMs: HOUR, reuseIntervalMs: 10_000, tagged: true });
      const before = await store.rowCounts();
      expect(before).toEqual({ users: 1, sessions: 1, service_accounts: 0, assertions: 0, attempts: 0, rates: 0, passkeys: 0, ceremonies: 0 });
      for (let g = 0; g < 1000; g++) {
        clock.advance(1000);
        expect((await rotate(g)).outcome).toBe('rotated');
      }
      expect(await store.rowCounts()).toEqual(before);
    } finally {
      await store.close();
    }
  });

  test('the sweeper deletes ended sessions, expired assertion ids, counters and windows, in batches', async () => {
    const clock = new ManualClock(T0);
    const store = await open(url, { clock });
    try {
      await truncate(url);
      const userId = newId(random, 'usr');
      await store.createUser({ id: userId, username: 'sweepme', passwordHash: 'h', roles: [], disabled: false, origin: 'api' });
      const live = newId(random, 'ses');
      await store.createSession({ userId, sessionId: live, userGeneration: 0, refreshHash: 'h0', refreshTtlMs: 10 * HOUR, sessionMaxAgeMs: 24 * HOUR, clientAddress: 'a', amr: ['pwd'], userAgent: 'u' });
      // More ended sessions than one batch holds, each of its own user (the cap would end them otherwise).
      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(
          `INSERT INTO auth_users (id, username, password_hash, roles, disabled, generation, revision, origin, created_at, password_changed_at)
           SELECT 'usr_bulk' || i, 'bulk' || i, 'h', '{}', false, 0, 1, 'api', $1::bigint, $1::bigint FROM generate_series(1, $2) i`,
          [T0, SWEEP_BATCH + 500],
        );
        await client.query(
          `INSERT INTO auth_sessions (id, user_id, user_generation, generation, token_hash, created_at, last_refreshed_at, expires_at, token_expires_at, purge_at, client_address, user_agent)
           SELECT 'ses_bulk' || i, 'usr_bulk' || i, 0, 0, 'h', $1::bigint, $1::bigint, $1::bigint + 1000, $1::bigint + 1000, $1::bigint + 1000, 'a', 'u' FROM generate_series(1, $2) i`,
          [T0, SWEEP_BATCH + 500],
        );
      } finally {
        await client.end();
      }
      const account = newId(random, 'sva');
      expect(await store.useAssertion(account, 'j1', T0 + 60_000)).toBe(true);
      await store.recordFailure('10.0.0.9', { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 60_000, maxFailures: 100, windowMs: HOUR, shortWindowMs: 60_000, inFlightLeaseMs: 60_000 });
      await store.hitRate('reg:10.0.0.9', 10, 60_000);
      await store.putCeremony(newId(random, 'pkc'), '{}', 300_000);
      const now = clock.now();
      expect(await store.createApiKey({ id: newId(random, 'apk'), ownerId: userId, name: 'k', roles: [], hash: 'h'.repeat(43), createdAt: now, expiresAt: now + HOUR, ownerGeneration: 0 }, 5)).toBe('created');
      expect(await store.sweep()).toEqual({ sessions: 0, assertions: 0, attempts: 0, rates: 0, ceremonies: 0, api_keys: 0 });
      clock.advance(2 * HOUR);
      expect(await store.sweep()).toEqual({ sessions: SWEEP_BATCH + 500, assertions: 1, attempts: 1, rates: 1, ceremonies: 1, api_keys: 1 });
      expect(await store.rowCounts()).toMatchObject({ sessions: 1, assertions: 0, attempts: 0, rates: 0, ceremonies: 0 });
      expect(await store.liveSession(userId, live)).toBeDefined();
    } finally {
      await store.close();
    }
  });

  test('a revoke-all leaves the other sessions to the sweeper once their access tokens have expired', async () => {
    const clock = new ManualClock(T0);
    const store = await open(url, { clock });
    try {
      await truncate(url);
      const { userId, sessionId } = await userWithSession(store);
      await store.updateUser(userId, { revokeSessions: true });
      expect(await store.rotateRefreshToken({ userId, sessionId, generation: 0, hash: 'h0', successorHash: 'h1', sealedSuccessor: 's', refreshTtlMs: HOUR, reuseIntervalMs: 0, tagged: true })).toEqual({ outcome: 'invalid', why: 'revoked' });
      clock.advance(60_000);
      expect((await store.sweep()).sessions).toBe(1);
    } finally {
      await store.close();
    }
  });

  test('ten stores migrating one database at once: it is migrated once, every store serves', async () => {
    const fresh = await pg().createDatabase();
    const stores = Array.from({ length: 10 }, () => new PostgresStore({ connection: { url: fresh, poolSize: 2 }, statementTimeoutMs: 5000, accessGraceMs: 60_000, maxSessionsPerUser: 10, migrate: 'auto' }));
    try {
      await Promise.all(stores.map((s) => s.connect()));
      const client = new Client({ connectionString: fresh });
      await client.connect();
      try {
        const { rows } = await client.query('SELECT version, name FROM auth_schema_migrations ORDER BY version');
        expect(rows).toEqual(knownMigrations().map((m) => ({ version: m.version, name: m.name })));
      } finally {
        await client.end();
      }
      await Promise.all(stores.map((s) => s.ping()));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test('a schema newer than this release: start-up stops with a clear message; with migrations off, an older one too', async () => {
    const fresh = await pg().createDatabase();
    const client = new Client({ connectionString: fresh });
    await client.connect();
    try {
      const none = new PostgresStore({ connection: { url: fresh, poolSize: 1 }, statementTimeoutMs: 500, accessGraceMs: 60_000, maxSessionsPerUser: 10, migrate: 'off' });
      await expect(none.connect()).rejects.toThrow(new StoreSetupError(`the database's schema is at version 0; this release needs ${knownMigrations().length}: run \`grpc-auth migrate\` (or set AUTH_DATABASE_MIGRATE=auto)`));
      await none.close();
      const known = knownMigrations();
      const { Pool } = await import('pg');
      const pool = new Pool({ connectionString: fresh });
      expect(await migrate(pool, known)).toEqual(known.map((m) => m.version));
      expect(known.map((m) => m.version)).toEqual(Array.from({ length: known.length }, (_, i) => i + 1));
      expect(await migrate(pool, known)).toEqual([]);
      await client.query("INSERT INTO auth_schema_migrations (version, name) VALUES (99, 'from_the_future')");
      expect(await schemaState(pool, known)).toEqual({ applied: 99, known: known.length });
      await pool.end();
      for (const mode of ['auto', 'off'] as const) {
        const store = new PostgresStore({ connection: { url: fresh, poolSize: 1 }, statementTimeoutMs: 500, accessGraceMs: 60_000, maxSessionsPerUser: 10, migrate: mode });
        await expect(store.connect()).rejects.toThrow(new StoreSetupError(`the database's schema is at version 99, newer than this release knows (${known.length}): run the release that migrated it, or a newer one`));
        await store.close();
      }
    } finally {
      await client.end();
    }
  });

  test('a failing migration changes nothing: the transaction rolls back', async () => {
    const fresh = await pg().createDatabase();
    const { Pool } = await import('pg');
    const pool = new Pool({ connectionString: fresh });
    try {
      const broken = [...knownMigrations(), { version: knownMigrations().length + 1, name: 'broken', sql: 'CREATE TABLE auth_half (x int); SELECT no_such_function();' }];
      await expect(migrate(pool, broken)).rejects.toThrow(/no_such_function/);
      expect(await schemaState(pool, broken)).toEqual({ applied: 0, known: broken.length });
      const { rows } = await pool.query("SELECT to_regclass('auth_users') AS t, to_regclass('auth_half') AS h");
      expect(rows[0]).toEqual({ t: null, h: null });
    } finally {
      await pool.end();
    }
  });

  test('a write blocked past its budget does not land later: the caller is told UNAVAILABLE and the token stays current', async () => {
    const store = await open(url, { statementTimeoutMs: 200 });
    const blocker = new Client({ connectionString: url });
    await blocker.connect();
    try {
      const { userId, sessionId } = await userWithSession(store);
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM auth_sessions WHERE id = $1 FOR UPDATE', [sessionId]);
      const rotate = (g: number, hash: string) => store.rotateRefreshToken({ userId, sessionId, generation: g, hash, successorHash: 'h1', sealedSuccessor: 's', refreshTtlMs: HOUR, reuseIntervalMs: 0, tagged: true });
      const t0 = Date.now();
      await expect(rotate(0, 'h0')).rejects.toMatchObject({ code: 'unavailable' });
      expect(Date.now() - t0).toBeLessThan(2000);
      // The lock goes after the caller gave up: the rotation must not run then.
      await new Promise((r) => setTimeout(r, 300));
      await blocker.query('COMMIT');
      expect((await rotate(0, 'h0')).outcome).toBe('rotated');
    } finally {
      await blocker.end();
      await store.close();
    }
  });

  test('a pool whose connections are all busy: calls fail UNAVAILABLE within the budget and ping says it cannot serve', async () => {
    const store = await open(url, { poolSize: 1, statementTimeoutMs: 200 });
    const blocker = new Client({ connectionString: url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE auth_rate_windows IN ACCESS EXCLUSIVE MODE');
      // Each call holds the one connection until the server gives up its lock wait (200 ms): twenty
      // of them keep it busy for far longer than a call may wait for it.
      const held = Array.from({ length: 20 }, (_, i) => store.hitRate(`k${i}`, 10, 60_000).catch((e: unknown) => e));
      const t0 = Date.now();
      await expect(store.ping()).rejects.toMatchObject({ code: 'unavailable' });
      expect(Date.now() - t0).toBeLessThan(2000);
      for (const h of await Promise.all(held)) expect(h).toMatchObject({ code: 'unavailable' });
      await blocker.query('ROLLBACK');
      await eventually(() => store.ping(), { intervalMs: 50 });
    } finally {
      await blocker.end();
      await store.close();
    }
  });

  test('a read-only database cannot serve; writable again, it can', async () => {
    const fresh = await pg().createDatabase();
    const store = await open(fresh);
    const admin = new Client({ connectionString: fresh });
    await admin.connect();
    try {
      const name = new URL(fresh).pathname.slice(1);
      await admin.query(`ALTER DATABASE ${name} SET default_transaction_read_only = on`);
      // A new connection reads the database's settings: drop the pool's idle ones.
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      await eventually(async () => expect(await store.ping().then(() => 'up', (e: { code?: string }) => e.code)).toBe('unavailable'), { intervalMs: 50 });
      await admin.query(`ALTER DATABASE ${name} SET default_transaction_read_only = off`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      await eventually(() => store.ping(), { intervalMs: 50 });
    } finally {
      await admin.end();
      await store.close();
    }
  });
});

describeWithPostgres('PostgresStore outages', (pg) => {
  test('PostgreSQL down: calls fail fast with unavailable, and the store recovers by itself', async () => {
    const url = await pg().createDatabase();
    const store = await open(url, { statementTimeoutMs: 300 });
    try {
      const { userId, sessionId } = await userWithSession(store);
      await pg().stop();
      const t0 = Date.now();
      await expect(store.liveSession(userId, sessionId)).rejects.toMatchObject({ code: 'unavailable', message: 'session store unavailable' });
      await expect(store.ping()).rejects.toMatchObject({ code: 'unavailable' });
      expect(Date.now() - t0).toBeLessThan(5000);
      await pg().start();
      await eventually(() => store.ping(), { intervalMs: 100 });
      await expect(store.liveSession(userId, sessionId)).resolves.toMatchObject({ id: userId });
    } finally {
      await store.close();
    }
  });

  test('PostgreSQL hanging: a call fails with unavailable within its budget, not later', async () => {
    const url = await pg().createDatabase();
    const store = await open(url, { statementTimeoutMs: 300 });
    const blocker = new Client({ connectionString: url });
    await blocker.connect();
    try {
      const { userId, sessionId } = await userWithSession(store);
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE auth_users IN ACCESS EXCLUSIVE MODE');
      const t0 = Date.now();
      await expect(store.liveSession(userId, sessionId)).rejects.toMatchObject({ code: 'unavailable' });
      expect(Date.now() - t0).toBeLessThan(3000);
      await blocker.query('ROLLBACK');
      await expect(store.liveSession(userId, sessionId)).resolves.toMatchObject({ id: userId });
    } finally {
      await blocker.end();
      await store.close();
    }
  });
});

describeNeeding(['postgresql', 'openssl'], 'PostgresStore over TLS', () => {
  let pg: TestPostgres;
  let ca: TestCa;
  beforeAll(async () => {
    ca = createTestCa('pg');
    pg = await startPostgres({ tls: ca.issue('server', 'server') });
  }, 60_000);
  afterAll(() => pg.destroy());

  const viaTls = async (store: PostgresStore) => (await store.client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0]!.ssl;

  test.each([
    { name: 'AUTH_DATABASE_CA_FILE', url: (u: string) => u, caFile: () => ca.caPem },
    { name: 'sslmode=verify-full with sslrootcert in the URL', url: (u: string) => `${u}?sslmode=verify-full&sslrootcert=${ca.caPem}`, caFile: () => undefined },
  ])('the server verified by its CA ($name): the store serves, over TLS', async ({ url, caFile }) => {
    const base = (await pg.createDatabase()).replace('127.0.0.1', 'localhost');
    const store = new PostgresStore({ connection: { url: url(base), caFile: caFile(), poolSize: 1 }, statementTimeoutMs: 1000, accessGraceMs: 60_000, maxSessionsPerUser: 10, migrate: 'auto' });
    try {
      await store.connect();
      expect(await viaTls(store)).toBe(true);
    } finally {
      await store.close();
    }
  });

  test('a server whose certificate another CA signed is refused: UNAVAILABLE, nothing sent', async () => {
    const other = createTestCa('pg-other');
    const base = (await pg.createDatabase()).replace('127.0.0.1', 'localhost');
    const store = new PostgresStore({ connection: { url: base, caFile: other.caPem, poolSize: 1 }, statementTimeoutMs: 1000, accessGraceMs: 60_000, maxSessionsPerUser: 10, migrate: 'auto' });
    try {
      await expect(store.connect()).rejects.toMatchObject({ code: 'unavailable', cause: { message: expect.stringMatching(/certificate/) } });
    } finally {
      await store.close();
    }
  });
});

describeWithPostgres('PostgresStore session checks in batches', (pg) => {
  test(`600 checks in one turn (batches of ${LIVE_BATCH}): each answered for its own user and session only`, async () => {
    const store = await open(await pg().createDatabase());
    try {
      const a = await userWithSession(store);
      const b = await userWithSession(store);
      const cases = Array.from({ length: 600 }, (_, i) => {
        switch (i % 4) {
          case 0: return { userId: a.userId, sessionId: a.sessionId, want: a.userId };
          case 1: return { userId: b.userId, sessionId: b.sessionId, want: b.userId };
          case 2: return { userId: b.userId, sessionId: a.sessionId, want: undefined };
          default: return { userId: a.userId, sessionId: newId(random, 'ses'), want: undefined };
        }
      });
      const answers = await Promise.all(cases.map((c) => store.liveSession(c.userId, c.sessionId)));
      expect(answers.map((x) => x?.id)).toEqual(cases.map((c) => c.want));
    } finally {
      await store.close();
    }
  });
});
