import { status } from '@grpc/grpc-js';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg_, { Client } from 'pg';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { generateEcPem } from '../../src/core/keys';
import { createClient } from '../../src/grpc/client';
import { knownMigrations } from '../../src/store/postgres/migrations';
import { PostgresStore } from '../../src/store/postgres/postgres-store';
import { sample, scrape, series } from '../helpers/metrics';
import { describeWithPostgres } from '../helpers/postgres';
import { startProcess, type Running } from '../helpers/process';
import { PASSWORD } from '../helpers/server';

/*
 * A statement the client gave up on must never write later. node-postgres gives up on a frozen
 * server (SIGSTOP) after its query timeout, but what it sent waits in the socket and runs when the
 * server thaws: every write that matters carries a deadline the server checks (auth_on_time), and
 * a transaction's COMMIT goes in one message with it.
 */

const STATEMENT_TIMEOUT_MS = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const id = (prefix: string) => `${prefix}_${randomBytes(16).toString('base64url')}`;
const hash = (s: string) => createHash('sha256').update(s).digest('base64url');

describeWithPostgres('PostgreSQL: no write lands after its caller was told UNAVAILABLE', (pg) => {
  let url: string;
  let store: PostgresStore;
  let sql: Client;
  beforeAll(async () => {
    url = await pg().createDatabase();
    store = new PostgresStore({ connection: { url, poolSize: 4 }, statementTimeoutMs: STATEMENT_TIMEOUT_MS, accessGraceMs: 60_000, maxSessionsPerUser: 10, migrate: 'auto' });
    await store.connect();
    sql = new Client({ connectionString: url });
    sql.on('error', () => {}); // the server stops before this suite's own afterAll
    await sql.connect();
  });
  afterAll(async () => {
    pg().thaw();
    await sql?.end();
    await store?.close();
  });

  /** Runs `write` against a frozen server: it must fail UNAVAILABLE; the server then thaws and runs what it was sent. */
  async function whileFrozen(write: () => Promise<unknown>, freezeNow = true): Promise<void> {
    await store.ping(); // a fresh reading of the database's clock, as the health check keeps one
    if (freezeNow) pg().freeze();
    try {
      await expect(write()).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      pg().thaw();
    }
    // What the frozen server had in its sockets has run (or failed) by now.
    await sleep(500);
    await store.ping();
  }

  /**
   * As whileFrozen, but the server freezes just as the transaction's COMMIT (or the statement
   * that contains `marker`) is sent: everything before it ran, and it waits in the socket. (pg's
   * Client.query is wrapped for the call.)
   */
  async function frozenAtCommit(write: () => Promise<unknown>, marker = 'COMMIT'): Promise<void> {
    const original = pg_.Client.prototype.query;
    pg_.Client.prototype.query = function (this: Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
      if (text?.includes(marker)) {
        pg_.Client.prototype.query = original;
        pg().freeze();
      }
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof original;
    try {
      await whileFrozen(write, false);
    } finally {
      pg_.Client.prototype.query = original;
    }
  }

  const newUser = (name: string) => ({ id: id('usr'), username: name, passwordHash: '$argon2id$x', roles: ['user'], disabled: false, origin: 'api' as const });
  const newSession = (userId: string, token: string) => ({ userId, sessionId: id('ses'), userGeneration: 0, refreshHash: hash(token), refreshTtlMs: 3_600_000, sessionMaxAgeMs: 86_400_000, clientAddress: '10.0.0.1', userAgent: 'test', amr: ['pwd'] });
  const count = async (query: string, values: unknown[]) => Number((await sql.query<{ n: string }>(query, values)).rows[0]!.n);

  test.each([
    {
      name: 'a refresh-token rotation (one statement)',
      async run() {
        const user = newUser(`rot-${randomBytes(3).toString('hex')}`);
        await store.createUser(user);
        const session = newSession(user.id, 't0');
        await store.createSession(session);
        const rotate = () => store.rotateRefreshToken({ userId: user.id, sessionId: session.sessionId, generation: 0, hash: hash('t0'), tagged: true, successorHash: hash('t1'), sealedSuccessor: 'sealed', refreshTtlMs: 3_600_000, reuseIntervalMs: 10 });
        await whileFrozen(rotate);
        expect(await count('SELECT generation AS n FROM auth_sessions WHERE id = $1', [session.sessionId])).toBe(0);
        // Long past the reuse interval, the retry is a first rotation, not re-use.
        expect(await rotate()).toMatchObject({ outcome: 'rotated' });
      },
    },
    {
      name: 'a registration (one statement)',
      async run() {
        const user = newUser(`reg-${randomBytes(3).toString('hex')}`);
        await whileFrozen(() => store.createUser(user));
        expect(await count('SELECT count(*) AS n FROM auth_users WHERE username = $1', [user.username])).toBe(0);
        expect(await store.createUser(user)).toBe('created');
      },
    },
    {
      name: 'a login sent to a frozen server (a transaction)',
      async run() {
        const user = newUser(`login-${randomBytes(3).toString('hex')}`);
        await store.createUser(user);
        const session = newSession(user.id, 'x');
        await whileFrozen(() => store.createSession(session));
        expect(await count('SELECT count(*) AS n FROM auth_sessions WHERE user_id = $1', [user.id])).toBe(0);
      },
    },
    {
      name: 'a login whose COMMIT reaches a frozen server',
      async run() {
        const user = newUser(`commit-${randomBytes(3).toString('hex')}`);
        await store.createUser(user);
        await frozenAtCommit(() => store.createSession(newSession(user.id, 'y')));
        expect(await count('SELECT count(*) AS n FROM auth_sessions WHERE user_id = $1', [user.id])).toBe(0);
      },
    },
    {
      name: 'second-factor secrets written at a frozen COMMIT (a compare-and-set)',
      async run() {
        const user = newUser(`secrets-${randomBytes(3).toString('hex')}`);
        await store.createUser(user);
        await frozenAtCommit(() => store.writeUserSecrets(user.id, 0, '{"totp":1}'));
        expect(await store.readUserSecrets(user.id)).toBeUndefined();
        // The retry at the version it read is not a conflict.
        expect(await store.writeUserSecrets(user.id, 0, '{"totp":1}')).toBe('written');
      },
    },
    ...(['INSERT INTO auth_attempts', 'UPDATE auth_attempts'] as const).map((statement) => ({
      name: `a login attempt reserved by compare-and-set after its read (${statement.split(' ')[0]}, one statement) reaching a frozen server`,
      async run() {
        const key = `acct:${randomBytes(4).toString('hex')}`;
        const policy = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 60_000, maxFailures: 100, windowMs: 3_600_000, shortWindowMs: 60_000, inFlightLeaseMs: 60_000 };
        // UPDATE: the key has a row already, a failure and nothing in flight.
        if (statement.startsWith('UPDATE')) {
          await store.beginAttempt(key, policy);
          await store.endAttempt(key, policy, 'failed');
        }
        await frozenAtCommit(() => store.beginAttempt(key, policy), statement);
        expect(await count('SELECT count(*) AS n FROM auth_attempts WHERE key = $1 AND in_flight > 0', [key])).toBe(0);
        expect(await store.beginAttempt(key, policy)).toEqual({ allowed: true });
        expect(await count('SELECT in_flight AS n FROM auth_attempts WHERE key = $1', [key])).toBe(1);
      },
    })),
    {
      name: "a login attempt reserved under the row's lock (the way after lost compare-and-set races) at a frozen COMMIT",
      async run() {
        const key = `acct:${randomBytes(4).toString('hex')}`;
        const policy = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 60_000, maxFailures: 100, windowMs: 3_600_000, shortWindowMs: 60_000, inFlightLeaseMs: 60_000 };
        const lose = jest.spyOn(store as unknown as { swapAttempt: () => Promise<boolean> }, 'swapAttempt').mockResolvedValue(false);
        try {
          await frozenAtCommit(() => store.beginAttempt(key, policy));
          expect(lose).toHaveBeenCalledTimes(2);
        } finally {
          lose.mockRestore();
        }
        expect(await count('SELECT count(*) AS n FROM auth_attempts WHERE key = $1 AND in_flight > 0', [key])).toBe(0);
      },
    },
    {
      name: "a successful login's attempt cleared (one statement)",
      async run() {
        const key = `acct:${randomBytes(4).toString('hex')}`;
        const policy = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 60_000, maxFailures: 100, windowMs: 3_600_000, shortWindowMs: 60_000, inFlightLeaseMs: 60_000 };
        await store.beginAttempt(key, policy);
        await whileFrozen(() => store.endAttempt(key, policy, 'succeeded'));
        expect(await count('SELECT count(*) AS n FROM auth_attempts WHERE key = $1 AND in_flight > 0', [key])).toBe(1);
        await store.endAttempt(key, policy, 'succeeded');
        expect(await count('SELECT count(*) AS n FROM auth_attempts WHERE key = $1', [key])).toBe(0);
      },
    },
    {
      name: "a service account's assertion id (one statement)",
      async run() {
        const account = id('sva');
        await store.createServiceAccount({ id: account, name: `svc-${randomBytes(3).toString('hex')}`, roles: ['reader'], credential: { type: 'secret', id: id('sec'), hash: 'h' } });
        const jti = randomBytes(8).toString('hex');
        await whileFrozen(() => store.useAssertion(account, jti, Date.now() + 60_000));
        // The client's retry of the same assertion is not taken for a replay.
        expect(await store.useAssertion(account, jti, Date.now() + 60_000)).toBe(true);
      },
    },
  ])('$name', async ({ run }) => run(), 30_000);
});

describeWithPostgres('PostgreSQL: a write that waited past its deadline for a lock or a connection', (pg) => {
  let url: string;
  let sql: Client;
  const stores: PostgresStore[] = [];
  const open = async (connection: { url: string; poolSize: number }, statementTimeoutMs: number) => {
    const store = new PostgresStore({ connection, statementTimeoutMs, accessGraceMs: 60_000, maxSessionsPerUser: 10, migrate: 'auto' });
    stores.push(store);
    await store.connect();
    return store;
  };
  beforeAll(async () => {
    url = await pg().createDatabase();
    sql = new Client({ connectionString: url });
    sql.on('error', () => {}); // the server stops before this suite's own afterAll
    await sql.connect();
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await sql?.end();
  });

  const policy = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 60_000, maxFailures: 100, windowMs: 3_600_000, shortWindowMs: 60_000, inFlightLeaseMs: 60_000 };
  const newUser = (name: string) => ({ id: id('usr'), username: name, passwordHash: '$argon2id$x', roles: ['user'], disabled: false, origin: 'api' as const });
  const count = async (query: string, values: unknown[]) => Number((await sql.query<{ n: string }>(query, values)).rows[0]!.n);
  /** A new user with one session, whose refresh token hashes as hash('t0'). */
  const userWithSession = async (store: PostgresStore, prefix: string) => {
    const user = newUser(`${prefix}-${randomBytes(3).toString('hex')}`);
    await store.createUser(user);
    const sessionId = id('ses');
    await store.createSession({ userId: user.id, sessionId, userGeneration: 0, refreshHash: hash('t0'), refreshTtlMs: 3_600_000, sessionMaxAgeMs: 86_400_000, clientAddress: '10.0.0.1', userAgent: 'test', amr: ['pwd'] });
    return { user, sessionId };
  };

  /*
   * Behind a pooler a single statement has no lock_timeout (no startup parameters, and it is not
   * in a transaction that sets one), so it waits for a lock for as long as the holder keeps it.
   * The caller is told UNAVAILABLE after the statement timeout; the holder then rolls back, and
   * the statement goes on. Its WHERE was evaluated before the wait: only the RETURNING's
   * deadline check stops the write.
   */
  test.each([
    {
      name: "a successful login's attempt cleared",
      async setup(store: PostgresStore) {
        const key = `acct:${randomBytes(4).toString('hex')}`;
        await store.beginAttempt(key, policy);
        return {
          lock: { text: 'SELECT 1 FROM auth_attempts WHERE key = $1 FOR UPDATE', values: [key] },
          write: () => store.endAttempt(key, policy, 'succeeded'),
          written: async () => (await count('SELECT count(*) AS n FROM auth_attempts WHERE key = $1', [key])) === 0,
        };
      },
    },
    {
      name: 'a refresh-token rotation',
      async setup(store: PostgresStore) {
        const { user, sessionId } = await userWithSession(store, 'rot');
        return {
          lock: { text: 'SELECT 1 FROM auth_sessions WHERE id = $1 FOR UPDATE', values: [sessionId] },
          write: () => store.rotateRefreshToken({ userId: user.id, sessionId, generation: 0, hash: hash('t0'), tagged: true, successorHash: hash('t1'), sealedSuccessor: 'sealed', refreshTtlMs: 3_600_000, reuseIntervalMs: 10 }),
          written: async () => (await count('SELECT generation AS n FROM auth_sessions WHERE id = $1', [sessionId])) === 1,
        };
      },
    },
    {
      name: 'a registration waiting on the same name inserted by another transaction',
      async setup(store: PostgresStore) {
        const user = newUser(`reg-${randomBytes(3).toString('hex')}`);
        return {
          lock: {
            text: "INSERT INTO auth_users (id, username, password_hash, roles, disabled, generation, revision, origin, created_at, password_changed_at) VALUES ($1, $2, 'x', '{user}', false, 0, 1, 'api', 0, 0)",
            values: [id('usr'), user.username],
          },
          write: () => store.createUser(user),
          written: async () => (await count('SELECT count(*) AS n FROM auth_users WHERE id = $1', [user.id])) === 1,
        };
      },
    },
    {
      name: "a service account's assertion id waiting on the same id inserted by another transaction",
      async setup(store: PostgresStore) {
        const account = id('sva');
        const jti = randomBytes(8).toString('hex');
        return {
          lock: { text: 'INSERT INTO auth_assertions (account_id, jti, expires_at) VALUES ($1, $2, 0)', values: [account, jti] },
          write: () => store.useAssertion(account, jti, Date.now() + 60_000),
          written: async () => (await count('SELECT count(*) AS n FROM auth_assertions WHERE account_id = $1', [account])) === 1,
        };
      },
    },
    {
      name: "a passkey linked while the user's row is locked (a login, an update)",
      async setup(store: PostgresStore) {
        const user = newUser(`pk-${randomBytes(3).toString('hex')}`);
        await store.createUser(user);
        const credential = randomBytes(16).toString('base64url');
        return {
          lock: { text: 'SELECT 1 FROM auth_users WHERE id = $1 FOR UPDATE', values: [user.id] },
          write: () => store.linkPasskey(credential, user.id),
          written: async () => (await count('SELECT count(*) AS n FROM auth_passkeys WHERE credential_id = $1', [credential])) === 1,
        };
      },
    },
    {
      name: 'a passkey ceremony taken',
      async setup(store: PostgresStore) {
        const ceremony = id('pkc');
        await store.putCeremony(ceremony, '{"kind":"login"}', 60_000);
        return {
          lock: { text: 'SELECT 1 FROM auth_ceremonies WHERE id = $1 FOR UPDATE', values: [ceremony] },
          write: () => store.takeCeremony(ceremony),
          written: async () => (await count('SELECT count(*) AS n FROM auth_ceremonies WHERE id = $1', [ceremony])) === 0,
        };
      },
    },
    {
      name: 'a session revoked (RevokeSession)',
      async setup(store: PostgresStore) {
        const { user, sessionId } = await userWithSession(store, 'rev');
        return {
          lock: { text: 'SELECT 1 FROM auth_sessions WHERE id = $1 FOR UPDATE', values: [sessionId] },
          write: () => store.revokeSession(user.id, sessionId),
          written: async () => (await count('SELECT count(*) AS n FROM auth_sessions WHERE id = $1', [sessionId])) === 0,
        };
      },
    },
    {
      name: "a login attempt reserved by compare-and-set on the key's row",
      async setup(store: PostgresStore) {
        const key = `acct:${randomBytes(4).toString('hex')}`;
        await store.beginAttempt(key, policy);
        await store.endAttempt(key, policy, 'failed');
        return {
          lock: { text: 'SELECT 1 FROM auth_attempts WHERE key = $1 FOR UPDATE', values: [key] },
          write: () => store.beginAttempt(key, policy),
          written: async () => (await count('SELECT count(*) AS n FROM auth_attempts WHERE key = $1 AND in_flight > 0', [key])) > 0,
        };
      },
    },
    {
      name: 'a login attempt reserved by compare-and-set, its key inserted by another transaction',
      async setup(store: PostgresStore) {
        const key = `acct:${randomBytes(4).toString('hex')}`;
        return {
          lock: { text: 'INSERT INTO auth_attempts (key, failures, in_flight, last_failure_at, expires_at) VALUES ($1, 0, 0, 0, 0)', values: [key] },
          write: () => store.beginAttempt(key, policy),
          written: async () => (await count('SELECT count(*) AS n FROM auth_attempts WHERE key = $1', [key])) > 0,
        };
      },
    },
  ])('behind a pooler, $name blocked by a lock whose holder rolls back: UNAVAILABLE, and nothing written', async ({ setup }) => {
    const store = await open({ url: `${url}?pgbouncer=true`, poolSize: 2 }, STATEMENT_TIMEOUT_MS);
    const { lock, write, written } = await setup(store);
    const holder = new Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(lock.text, lock.values);
      await store.ping(); // a fresh reading of the database's clock
      await expect(write()).rejects.toMatchObject({ code: 'unavailable' });
      await holder.query('ROLLBACK');
      // The statement that waited runs (or fails) now: wait until no statement of the store's is running.
      for (let i = 0; i < 100 && (await count("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'grpc-auth' AND state = 'active'", [])) > 0; i++) await sleep(50);
      expect(await written()).toBe(false);
    } finally {
      await holder.end();
    }
  }, 30_000);

  test('a write that waited for a pool connection is not refused as late: its deadline is taken when it is sent', async () => {
    // A deadline 750 ms after sending; a connection within 1 s (the budget and pg-pool's own
    // timeout): a write that waits 750-1000 ms for one was refused as late when it was not.
    const store = await open({ url, poolSize: 1 }, 500);
    const key = `acct:${randomBytes(4).toString('hex')}`;
    await store.beginAttempt(key, policy);
    const user = newUser(`wait-${randomBytes(3).toString('hex')}`);
    await store.ping();
    const busy = await store.client.connect(); // the pool's one connection
    const waiting = Promise.all([store.endAttempt(key, policy, 'succeeded'), store.createUser(user)]);
    await sleep(825);
    busy.release();
    await expect(waiting).resolves.toEqual([undefined, 'created']);
    expect(await count('SELECT count(*) AS n FROM auth_attempts WHERE key = $1', [key])).toBe(0);
  }, 30_000);
});

describeWithPostgres('PostgreSQL frozen under Refresh: the retry after UNAVAILABLE works, however late', (pg) => {
  let instance: Running | undefined;
  afterAll(async () => {
    pg().thaw();
    instance?.child.kill('SIGKILL');
    await instance?.exit;
  });

  test('freeze, Refresh (UNAVAILABLE), thaw, wait past the reuse interval, retry: a working pair for every session, none revoked', async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'auth-late-')), 'signing.pem');
    writeFileSync(keyFile, generateEcPem());
    instance = await startProcess({
      AUTH_DATABASE_URL: await pg().createDatabase(),
      AUTH_SIGNING_KEY_FILE: keyFile,
      AUTH_LOG_LEVEL: 'info',
      AUTH_DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
      AUTH_STORE_TIMEOUT: '1s',
      AUTH_REFRESH_REUSE_INTERVAL: '1s',
      AUTH_METRICS_ADDRESS: '127.0.0.1:0',
      ...(process.env.NO_DEADLINE ? { NO_DEADLINE: '1' } : {}),
    });
    const auth = createClient(AuthService, String(instance.started.address));
    await auth.register({ username: 'lena', password: PASSWORD });
    const SESSIONS = 8;
    const tokens: string[] = [];
    for (let i = 0; i < SESSIONS; i++) tokens.push((await auth.login({ username: 'lena', password: PASSWORD })).refreshToken);

    pg().freeze();
    const started = Date.now();
    const answers = await Promise.all(tokens.map((t) => auth.refresh({ refreshToken: t }).then(() => 'OK', (e: { code: number }) => e.code)));
    const answeredMs = Date.now() - started;
    await sleep(300);
    pg().thaw();
    await sleep(1500); // past the 1 s reuse interval: a late rotation would make the retry re-use

    const retried = await Promise.all(
      tokens.map(async (t) => {
        const pair = await auth.refresh({ refreshToken: t });
        await auth.refresh({ refreshToken: pair.refreshToken });
        return 'working';
      }),
    );
    const revoked = instance.lines.filter((l) => l.event === 'refresh_token_reused').length;
    console.log(`frozen PostgreSQL: ${SESSIONS} refreshes answered ${JSON.stringify(answers.map((a) => (a === status.UNAVAILABLE ? 'UNAVAILABLE' : a)))} in ${answeredMs} ms; after the thaw and 1.5 s, retries: ${retried.filter((r) => r === 'working').length} of ${SESSIONS} working, ${revoked} sessions revoked as re-use`);
    expect(answers).toEqual(Array(SESSIONS).fill(status.UNAVAILABLE));
    expect(retried).toEqual(Array(SESSIONS).fill('working'));
    expect(revoked).toBe(0);

    // What an operator saw: the timeouts counted by cause, and the store's state.
    const metrics = await scrape(Number(instance.lines.find((l) => l.event === 'metrics_listening')!.port));
    expect(sample(metrics, 'auth_postgres_errors_total{cause="timeout"}')).toBeGreaterThanOrEqual(SESSIONS);
    const rotateErrors = series(metrics, 'auth_store_errors_total').filter(([labels]) => labels.includes('operation="rotateRefreshToken"'));
    expect(rotateErrors.reduce((n, [, v]) => n + v, 0)).toBe(SESSIONS);
    expect(sample(metrics, 'auth_sessions_live')).toBe(SESSIONS);
    expect(sample(metrics, 'auth_postgres_schema_version')).toBe(knownMigrations().length);
    expect(sample(metrics, 'auth_serving')).toBe(1);
    expect(series(metrics, 'auth_postgres_writer_info')).toEqual([[`{host="127.0.0.1:${pg().port}",pooler="false"}`, 1]]);
    expect(series(metrics, 'auth_postgres_pool_connections').map(([labels]) => labels)).toEqual(['{state="idle"}', '{state="busy"}', '{state="waiting"}']);
    expect(sample(metrics, 'auth_postgres_pool_acquire_duration_seconds_count')).toBeGreaterThan(0);
    auth.close();
  }, 60_000);
});
