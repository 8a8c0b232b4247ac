import { readFileSync } from 'node:fs';
import DataLoader from 'dataloader';
import pg, { type Pool, type PoolClient, type PoolConfig } from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';
import type { Clock } from '../../clock.js';
import { isEnabledAdmin, mayDemote, type UpdateResult, type UserChange, type UserQuery } from '../../core/accounts.js';
import type { AttemptGrant, AttemptOutcome, BackoffPolicy } from '../../core/login-throttle.js';
import type { LiveUser, NewUser, SessionInfo, UserOrigin, UserRecord } from '../../core/records.js';
import type { ParsedRefreshToken } from '../../core/refresh-token.js';
import { liveAccount, type Credential, type NewCredential, type ServiceAccountChange, type ServiceAccountRecord, type ServiceAccountUpdate } from '../../core/service-accounts.js';
import type { CreateSessionResult, NewSession, RotateRequest, RotateResult } from '../../core/session-flows.js';
import { AuthError } from '../../errors.js';
import type { SecondFactorExport, UserSecretsRecord } from '../../core/user-secrets.js';
import { sharedAmr } from '../../core/amr.js';
import { beginRule, checkRule, endRule, recordRule, type AttemptEntry } from '../attempt-rules.js';
import { checkNotNewer, knownMigrations, migrate, schemaState, type Migration } from './migrations.js';
import { applyServiceAccountChange } from '../service-account-rules.js';
import { StoreSetupError, type Store } from '../store.js';

/** Where PostgreSQL is: a URL (`sslmode` and the like in its query), and a CA to verify the server by. */
export interface PostgresConnection {
  readonly url: string;
  /** PEM CA bundle: the server's certificate must chain to it and name its host (verify-full). */
  readonly caFile?: string | undefined;
  /** Connections held at most; a call that finds them all busy waits its budget, then fails UNAVAILABLE. */
  readonly poolSize: number;
}

export interface PostgresStoreOptions {
  readonly connection: PostgresConnection;
  /**
   * One statement's bound, enforced by the server (statement_timeout, lock waits included) and by
   * this client; an operation (waiting for a connection, its statements) gets twice this.
   */
  readonly statementTimeoutMs: number;
  /** How long a session's state outlives its last refresh token: the access-token TTL plus skew. */
  readonly accessGraceMs: number;
  /** Active sessions one user may hold; a new login past it ends the user's oldest session. */
  readonly maxSessionsPerUser: number;
  /** `auto` applies pending migrations at connect; `off` refuses a schema older than this release. */
  readonly migrate: 'auto' | 'off';
  /** For tests only: this clock's time instead of the database's own. */
  readonly clock?: Clock;
  /** For tests only: the migrations to know (default: those the package ships). */
  readonly migrations?: readonly Migration[];
}

/** Rows the sweeper deletes in one statement, and statements a table gets in one sweep. */
export const SWEEP_BATCH = 1000;
const SWEEP_BATCHES = 20;
/** Session checks answered by one statement at most (those of one event-loop turn). */
export const LIVE_BATCH = 256;
/** Attempts of an operation that hit a serialization failure or a deadlock (40001, 40P01). */
const MAX_TRIES = 3;
/** Extra wait for the server's own answer past statement_timeout, so the client hears how it ended. */
const ANSWER_SLACK_MS = 250;

const UNAVAILABLE = 'session store unavailable';

/** The store's time in SQL: the test clock's when given as `$n`, else the database's (one clock for every instance). */
const now = (n: number) => `coalesce($${n}::bigint, floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint)`;

const USER = 'id, username, password_hash, roles, disabled, generation, revision, origin, file_digest, created_at, password_changed_at';
const ACCOUNT = 'id, name, roles, disabled, created_at, revision, credentials';
const SESSION_INFO = 'id, user_id, created_at, last_refreshed_at, expires_at, token_expires_at, client_address, user_agent';
/** A session is active: within its lifetime, not idle past its refresh token plus the grace, its user enabled and not signed out since. (`n.now` and `$g` the grace.) */
const ACTIVE = (grace: string) => `n.now < s.expires_at AND n.now < s.token_expires_at + ${grace} AND NOT u.disabled AND s.user_generation >= u.generation`;
/** The highest code point: every valid name that starts with a prefix sorts below prefix + this (an index bound for prefix scans). */
const TOP = '\u{10FFFF}';

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  roles: string[];
  disabled: boolean;
  generation: number;
  revision: number;
  origin: string;
  file_digest: string | null;
  created_at: number;
  password_changed_at: number;
}

interface AccountRow {
  id: string;
  name: string;
  roles: string[];
  disabled: boolean;
  created_at: number;
  revision: number;
  credentials: Credential[];
}

type Query = <R = Record<string, unknown>>(name: string, text: string, values: unknown[]) => Promise<R[]>;

function userOf(row: UserRow): UserRecord {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    roles: row.roles,
    createdAt: row.created_at,
    passwordChangedAt: row.password_changed_at,
    disabled: row.disabled,
    generation: row.generation,
    revision: row.revision,
    origin: row.origin as UserOrigin,
    fileDigest: row.file_digest ?? undefined,
  };
}

function accountOf(row: AccountRow): ServiceAccountRecord {
  return { id: row.id, name: row.name, roles: row.roles, disabled: row.disabled, createdAt: row.created_at, revision: row.revision, credentials: row.credentials };
}

function liveOf(row: { id: string; username: string; roles: string[]; revision: number }): LiveUser {
  return { id: row.id, username: row.username, roles: row.roles, revision: row.revision };
}

/** pg's types, with bigint (int8) read as a number: the store's bigints are epoch milliseconds, far below 2^53. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

/** The pool's settings from the store's: TLS from the URL (sslmode, sslrootcert) or the CA file. */
export function poolConfig(options: Pick<PostgresStoreOptions, 'connection' | 'statementTimeoutMs'>): PoolConfig {
  const { connection, statementTimeoutMs } = options;
  const parsed = parseConnectionString(connection.url);
  const ssl =
    connection.caFile === undefined
      ? parsed.ssl
      : { ...(typeof parsed.ssl === 'object' ? parsed.ssl : {}), ca: readFileSync(connection.caFile, 'utf8'), rejectUnauthorized: true };
  return {
    ...(parsed as PoolConfig),
    ssl: ssl as PoolConfig['ssl'],
    port: parsed.port ? Number(parsed.port) : 5432,
    max: connection.poolSize,
    connectionTimeoutMillis: Math.max(statementTimeoutMs, 1000),
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeoutMs,
    lock_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + ANSWER_SLACK_MS,
    idle_in_transaction_session_timeout: Math.max(10 * statementTimeoutMs, 5000),
    application_name: 'grpc-auth',
    types: TYPES,
  };
}

/**
 * Whether a failed query leaves its connection fit for the next one: a statement the server
 * refused or cancelled does (it has a SQLSTATE of its own), a broken or timed-out connection
 * (no SQLSTATE, class 08, or the server shutting down) does not and is dropped from the pool.
 */
function connectionBroken(err: unknown): Error | undefined {
  if (err instanceof AuthError) return undefined;
  const code = (err as { code?: unknown } | undefined)?.code;
  const sqlState = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  if (sqlState !== undefined && !sqlState.startsWith('08') && !sqlState.startsWith('57P')) return undefined;
  return err instanceof Error ? err : new Error(String(err));
}

/** An import record whose name belongs to another id here (grpc-auth import stops, naming both). */
export class ImportConflictError extends Error {
  override readonly name = 'ImportConflictError';
}

/** Errors a retry of the whole transaction can clear: serialization failure, deadlock. */
function retryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === '40001' || code === '40P01';
}

/**
 * The system of record on PostgreSQL (node-postgres): users, service accounts and their
 * credentials, sessions and refresh-token state, assertion ids, throttles, all in one database,
 * so PostgreSQL alone is a complete deployment. Every decision is one statement or one
 * transaction that is correct under READ COMMITTED: a row lock (`FOR UPDATE`, or the lock an
 * `UPDATE` or `INSERT … ON CONFLICT` takes) orders concurrent writers, and each later statement
 * of a transaction sees what they committed; serialization failures and deadlocks are retried.
 *
 * Every operation is bounded: a connection must come from the pool within the operation's budget
 * (twice the statement timeout), the server cancels a statement past the statement timeout (lock
 * waits included), and a transaction past its budget rolls back instead of committing, so a write
 * the caller was told failed (UNAVAILABLE) does not land later. Only this module and
 * postgres-migrations.ts import pg.
 */
export class PostgresStore implements Store {
  private readonly pool: Pool;
  private readonly budgetMs: number;
  private readonly grace: number;
  private readonly migrations: readonly Migration[];
  private ready = false;
  private closed = false;

  constructor(private readonly options: PostgresStoreOptions) {
    this.pool = new pg.Pool(poolConfig(options));
    // An idle connection that breaks (the server restarted) is dropped; the next call opens another.
    this.pool.on('error', () => {});
    // A connection that breaks while checked out fails the query it runs (which the caller hears);
    // pg-pool listens for errors only on idle ones, so without this an unheard 'error' would end the process.
    this.pool.on('connect', (client) => client.on('error', () => {}));
    this.budgetMs = 2 * options.statementTimeoutMs;
    this.grace = options.accessGraceMs;
    this.migrations = options.migrations ?? knownMigrations();
  }

  /** The pool, for tests and the tools (export, import). */
  get client(): Pool {
    return this.pool;
  }

  /** `$n` for the store's time: the test clock's, or null for the database's own. */
  private fixedNow(): number | null {
    return this.options.clock ? this.options.clock.now() : null;
  }

  private unavailable(cause: unknown): Error {
    if (cause instanceof ImportConflictError) return cause;
    return cause instanceof AuthError ? cause : new AuthError('unavailable', UNAVAILABLE, { cause });
  }

  /** A connection, or UNAVAILABLE: one that only comes after the operation's budget is given back unused. */
  private async acquire(started: number): Promise<PoolClient> {
    if (this.closed) throw new AuthError('unavailable', UNAVAILABLE, { cause: new Error('the store is closed') });
    const client = await this.pool.connect();
    if (performance.now() - started > this.budgetMs) {
      client.release();
      throw new AuthError('unavailable', UNAVAILABLE, { cause: new Error('no database connection within the budget; nothing was sent') });
    }
    return client;
  }

  private static run(client: PoolClient): Query {
    return async <R>(name: string, text: string, values: unknown[]) => (await client.query({ name, text, values })).rows as R[];
  }

  /** One statement on its own (autocommit), as a prepared statement named `name`. */
  private async one<R = Record<string, unknown>>(name: string, text: string, values: unknown[]): Promise<R[]> {
    const started = performance.now();
    try {
      const client = await this.acquire(started);
      let broken: Error | undefined;
      try {
        return (await client.query({ name, text, values })).rows as R[];
      } catch (err) {
        broken = connectionBroken(err);
        throw err;
      } finally {
        client.release(broken);
      }
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /**
   * A transaction (READ COMMITTED): `body` runs its statements; past the budget it rolls back
   * rather than commit late; a serialization failure or deadlock runs it again, within the budget.
   */
  private async tx<T>(body: (q: Query) => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      for (let attempt = 1; ; attempt++) {
        const client = await this.acquire(started);
        let broken: Error | undefined;
        try {
          await client.query('BEGIN');
          const result = await body(PostgresStore.run(client));
          if (performance.now() - started > this.budgetMs) throw new AuthError('unavailable', UNAVAILABLE, { cause: new Error('the transaction ran past its budget; rolled back') });
          await client.query('COMMIT');
          return result;
        } catch (err) {
          broken = connectionBroken(err);
          if (!broken) await client.query('ROLLBACK').catch((e: Error) => (broken = e));
          if (retryable(err) && attempt < MAX_TRIES && performance.now() - started < this.budgetMs) continue;
          throw err;
        } finally {
          client.release(broken);
        }
      }
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  // --- lifecycle --------------------------------------------------------------------------

  /**
   * Connects and brings the schema to this release's version (AUTH_DATABASE_MIGRATE=auto), or
   * checks that it is there (off). Rejects with `unavailable` while PostgreSQL cannot be reached,
   * with StoreSetupError when the schema can never serve this release.
   */
  async connect(): Promise<void> {
    await this.ensureSchema();
    await this.ping();
  }

  private async ensureSchema(): Promise<void> {
    if (this.ready) return;
    try {
      if (this.options.migrate === 'auto') {
        await migrate(this.pool, [...this.migrations]);
      } else {
        const state = await schemaState(this.pool, [...this.migrations]);
        checkNotNewer(state);
        if (state.applied < state.known) {
          throw new StoreSetupError(`the database's schema is at version ${state.applied}; this release needs ${state.known}: run \`grpc-auth migrate\` (or set AUTH_DATABASE_MIGRATE=auto)`);
        }
      }
    } catch (err) {
      if (err instanceof StoreSetupError) throw err;
      throw this.unavailable(err);
    }
    this.ready = true;
  }

  /**
   * Resolves when the store can serve: the schema is this release's, and the server is a primary
   * that takes writes (a hot standby, or one set read-only, cannot serve), reached through the
   * pool within the budget (a pool whose connections are all busy cannot serve either).
   */
  async ping(): Promise<void> {
    await this.ensureSchema();
    const rows = await this.one<{ standby: boolean; read_only: string }>('auth_ping', "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS read_only", []);
    const row = rows[0]!;
    if (row.standby || row.read_only === 'on') {
      throw new AuthError('unavailable', UNAVAILABLE, { cause: new Error(row.standby ? 'the database is a standby (in recovery): it takes no writes' : 'the database is read-only') });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  // --- users ------------------------------------------------------------------------------

  async createUser(user: NewUser, claims?: { readonly skeleton: string }): Promise<'created' | 'exists' | 'confusable'> {
    const inserted = await this.one(
      'auth_create_user',
      `INSERT INTO auth_users (${USER}, skeleton)
       SELECT $1::text, $2::text, $3::text, $4::text[], $5::boolean, 0, 1, $6::text, $7::text, t, t, $8::text FROM (SELECT ${now(9)} AS t) n
       ON CONFLICT DO NOTHING RETURNING id`,
      [user.id, user.username, user.passwordHash, [...user.roles], user.disabled, user.origin, user.fileDigest ?? null, claims?.skeleton ?? null, this.fixedNow()],
    );
    if (inserted.length === 1) return 'created';
    // Which unique key was taken: the name or id ("exists") before the skeleton ("confusable").
    const taken = await this.one('auth_user_taken', 'SELECT 1 FROM auth_users WHERE id = $1 OR username = $2', [user.id, user.username]);
    return taken.length > 0 ? 'exists' : 'confusable';
  }

  async findUserByUsername(username: string): Promise<UserRecord | undefined> {
    const rows = await this.one<UserRow>('auth_user_by_name', `SELECT ${USER} FROM auth_users WHERE username = $1`, [username]);
    return rows[0] && userOf(rows[0]);
  }

  async getUser(userId: string): Promise<UserRecord | undefined> {
    const rows = await this.one<UserRow>('auth_user_by_id', `SELECT ${USER} FROM auth_users WHERE id = $1`, [userId]);
    return rows[0] && userOf(rows[0]);
  }

  /**
   * A page of `table` in `key` order (a unique, bytewise-sorted column): those after `after`,
   * starting with `prefix`. Keyset paging on the unique index, bounded above by the prefix, so a
   * page costs the same at any depth and never scans past the prefix's range.
   */
  private keysetPage<R>(name: string, columns: string, table: string, key: string, query: UserQuery): Promise<R[]> {
    return this.one<R>(
      name,
      `SELECT ${columns} FROM ${table}
       WHERE ${key} >= $1 AND ${key} > $2 AND ${key} < $3 AND substr(${key}, 1, char_length($1)) = $1
       ORDER BY ${key} LIMIT $4`,
      [query.prefix, query.after ?? '', query.prefix + TOP, query.limit],
    );
  }

  async listUsers(query: UserQuery): Promise<UserRecord[]> {
    return (await this.keysetPage<UserRow>('auth_list_users', USER, 'auth_users', 'username', query)).map(userOf);
  }

  /** Whether an enabled admin other than `id` remains (users and service accounts together), under the admin guard's lock. */
  private static async anotherAdmin(q: Query, id: string): Promise<boolean> {
    const rows = await q<{ other: boolean }>(
      'auth_another_admin',
      `SELECT EXISTS (SELECT 1 FROM auth_users WHERE id <> $1 AND NOT disabled AND 'admin' = ANY (roles))
           OR EXISTS (SELECT 1 FROM auth_service_accounts WHERE id <> $1 AND NOT disabled AND 'admin' = ANY (roles)) AS other`,
      [id],
    );
    return rows[0]!.other;
  }

  /**
   * The last-admin rule's lock: every change that may take the admin role away and asks the rule
   * takes it first (before any row lock, so such changes never deadlock), and then counts the
   * others in a statement that sees whatever the previous holder committed.
   */
  private static async lockAdmins(q: Query): Promise<void> {
    await q('auth_lock_admins', 'SELECT id FROM auth_admin_guard WHERE id = 1 FOR UPDATE', []);
  }

  async updateUser(userId: string, change: UserChange): Promise<UpdateResult> {
    const guarded = mayDemote(change) && change.keepAnAdmin === true;
    return this.tx(async (q) => {
      if (guarded) await PostgresStore.lockAdmins(q);
      const rows = await q<UserRow>('auth_lock_user', `SELECT ${USER} FROM auth_users WHERE id = $1 FOR UPDATE`, [userId]);
      const current = rows[0];
      if (!current) return { outcome: 'not_found' };
      if (change.ifRevision !== undefined && change.ifRevision !== current.revision) return { outcome: 'conflict' };
      if (guarded && isEnabledAdmin(current) && !(await PostgresStore.anotherAdmin(q, userId))) return { outcome: 'last_admin' };
      const [updated] = await q<UserRow>(
        'auth_update_user',
        `UPDATE auth_users SET
           roles = coalesce($2::text[], roles),
           password_hash = coalesce($3, password_hash),
           password_changed_at = CASE WHEN $3::text IS NULL THEN password_changed_at ELSE ${now(7)} END,
           disabled = coalesce($4, disabled),
           file_digest = coalesce($5, file_digest),
           generation = generation + $6,
           revision = revision + 1
         WHERE id = $1 RETURNING ${USER}`,
        [userId, change.roles ? [...change.roles] : null, change.passwordHash ?? null, change.disabled ?? null, change.fileDigest ?? null, change.revokeSessions ? 1 : 0, this.fixedNow()],
      );
      if (change.revokeSessions) {
        // The calling session moves to the new generation in the same step (it never lapses); the
        // others are swept once their access tokens have expired (until then a refresh says "revoked").
        await q(
          'auth_revoke_all',
          `UPDATE auth_sessions SET
             user_generation = CASE WHEN id = $2 THEN $3 ELSE user_generation END,
             purge_at = CASE WHEN id = $2 THEN purge_at ELSE least(purge_at, ${now(5)} + $4) END
           WHERE user_id = $1`,
          [userId, change.keepSession ?? null, updated!.generation, this.grace, this.fixedNow()],
        );
      } else if (change.keepSession !== undefined) {
        await q('auth_keep_session', 'UPDATE auth_sessions SET user_generation = $3 WHERE id = $2 AND user_id = $1', [userId, change.keepSession, updated!.generation]);
      }
      return { outcome: 'updated', user: userOf(updated!) };
    });
  }

  async fileUserIds(): Promise<string[]> {
    const rows = await this.one<{ id: string }>('auth_file_users', "SELECT id FROM auth_users WHERE origin = 'file' ORDER BY id", []);
    return rows.map((r) => r.id);
  }

  /** The user, their name, their skeleton and (by the foreign key) every session of theirs go in one statement. */
  async deleteUser(userId: string, options: { readonly keepAnAdmin?: boolean } = {}): Promise<UserRecord | undefined | 'last_admin'> {
    return this.tx(async (q) => {
      if (options.keepAnAdmin) await PostgresStore.lockAdmins(q);
      const rows = await q<UserRow>('auth_lock_user', `SELECT ${USER} FROM auth_users WHERE id = $1 FOR UPDATE`, [userId]);
      const current = rows[0];
      if (!current) return undefined;
      if (options.keepAnAdmin && isEnabledAdmin(current) && !(await PostgresStore.anotherAdmin(q, userId))) return 'last_admin';
      await q('auth_delete_user', 'DELETE FROM auth_users WHERE id = $1', [userId]);
      return userOf(current);
    });
  }

  // --- sessions ---------------------------------------------------------------------------

  /**
   * With the user's row locked (so a revoke-all, a disable, or another login of theirs waits, and
   * the cap counts exactly): refuse for a gone, disabled or signed-out user, drop their ended
   * sessions, end the oldest past the cap, insert.
   */
  async createSession(req: NewSession): Promise<CreateSessionResult> {
    return this.tx(async (q): Promise<CreateSessionResult> => {
      const rows = await q<UserRow & { now: number }>('auth_session_user', `SELECT ${USER}, ${now(2)} AS now FROM auth_users WHERE id = $1 FOR UPDATE`, [req.userId, this.fixedNow()]);
      const user = rows[0];
      if (!user) return { outcome: 'refused', why: 'user_gone' };
      if (user.disabled) return { outcome: 'refused', why: 'disabled' };
      if (user.generation > req.userGeneration) return { outcome: 'refused', why: 'revoked' };
      const t = user.now;
      await q(
        'auth_prune_sessions',
        'DELETE FROM auth_sessions WHERE user_id = $1 AND NOT ($2 < expires_at AND $2 < token_expires_at + $3 AND user_generation >= $4)',
        [req.userId, t, this.grace, user.generation],
      );
      await q('auth_cap_sessions', 'DELETE FROM auth_sessions WHERE id IN (SELECT id FROM auth_sessions WHERE user_id = $1 ORDER BY seq DESC OFFSET $2)', [
        req.userId,
        this.options.maxSessionsPerUser - 1,
      ]);
      const expiresAt = t + req.sessionMaxAgeMs;
      const refreshExpiresAt = Math.min(t + req.refreshTtlMs, expiresAt);
      await q(
        'auth_insert_session',
        `INSERT INTO auth_sessions (id, user_id, user_generation, generation, token_hash, created_at, last_refreshed_at, expires_at, token_expires_at, purge_at, client_address, user_agent, amr)
         VALUES ($1, $2, $3, 0, $4, $5, $5, $6, $7, $8, $9, $10, $11)`,
        [req.sessionId, req.userId, user.generation, req.refreshHash, t, expiresAt, refreshExpiresAt, Math.min(expiresAt, refreshExpiresAt + this.grace), req.clientAddress, req.userAgent, req.amr.join(' ')],
      );
      return { outcome: 'created', user: liveOf(user), now: t, expiresAt, refreshExpiresAt, authTime: t, amr: req.amr };
    });
  }

  /**
   * One UPDATE rotates the current token when it is one: concurrent rotations of one token queue
   * on the row's lock, and each re-checks the generation on the row the one before left, so
   * exactly one wins. Anything else is read afterwards and told apart as the memory store does:
   * a retry within the interval, re-use (the session is deleted), or invalid.
   */
  async rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    for (let round = 0; round < 3; round++) {
      const rotated = await this.one<{ now: number; expires_at: number; token_expires_at: number; created_at: number; amr: string; id: string; username: string; roles: string[]; revision: number }>(
        'auth_rotate',
        `WITH n AS (SELECT ${now(9)} AS now)
         UPDATE auth_sessions s SET
           generation = s.generation + 1, token_hash = $5,
           previous_hash = s.token_hash, previous_rotated_at = n.now, previous_sealed = $6,
           token_expires_at = least(n.now + $7, s.expires_at), last_refreshed_at = n.now,
           purge_at = least(s.expires_at, least(n.now + $7, s.expires_at) + $8)
         FROM auth_users u, n
         WHERE s.id = $2 AND s.user_id = $1 AND u.id = s.user_id AND s.generation = $3 AND s.token_hash = $4
           AND n.now < s.token_expires_at AND ${ACTIVE('$8')}
         RETURNING n.now, s.expires_at, s.token_expires_at, s.created_at, s.amr, u.id, u.username, u.roles, u.revision`,
        [req.userId, req.sessionId, req.generation, req.hash, req.successorHash, req.sealedSuccessor, req.refreshTtlMs, this.grace, this.fixedNow()],
      );
      const r = rotated[0];
      if (r) return { outcome: 'rotated', user: liveOf(r), now: r.now, expiresAt: r.expires_at, refreshExpiresAt: r.token_expires_at, authTime: r.created_at, amr: sharedAmr(r.amr) };
      const found = await this.classify(req);
      if (found !== 'again') return found;
    }
    return { outcome: 'invalid', why: 'unknown' };
  }

  /** Why a rotation did not happen, from the session as it is now; 'again' when it now would. */
  private async classify(req: RotateRequest): Promise<RotateResult | 'again'> {
    const rows = await this.one<{
      generation: number;
      token_hash: string;
      previous_hash: string | null;
      previous_rotated_at: number | null;
      previous_sealed: string | null;
      expires_at: number;
      token_expires_at: number;
      created_at: number;
      amr: string;
      active: boolean;
      revoked: boolean;
      now: number;
      id: string;
      username: string;
      roles: string[];
      revision: number;
    }>(
      'auth_rotate_classify',
      `WITH n AS (SELECT ${now(4)} AS now)
       SELECT s.generation, s.token_hash, s.previous_hash, s.previous_rotated_at, s.previous_sealed, s.expires_at, s.token_expires_at, s.created_at, s.amr,
              (${ACTIVE('$3')}) AS active, (u.disabled OR s.user_generation < u.generation) AS revoked, n.now,
              u.id, u.username, u.roles, u.revision
       FROM auth_sessions s JOIN auth_users u ON u.id = s.user_id, n
       WHERE s.id = $2 AND s.user_id = $1`,
      [req.userId, req.sessionId, this.grace, this.fixedNow()],
    );
    const s = rows[0];
    if (!s) return { outcome: 'invalid', why: 'unknown' };
    if (!s.active) return { outcome: 'invalid', why: s.revoked ? 'revoked' : 'expired' };
    if (req.generation === s.generation) {
      if (req.hash !== s.token_hash) return { outcome: 'invalid', why: 'unknown' };
      if (s.now >= s.token_expires_at) return { outcome: 'invalid', why: 'expired' };
      return 'again';
    }
    if (req.generation > s.generation) return { outcome: 'invalid', why: 'unknown' };
    const times = { now: s.now, expiresAt: s.expires_at, refreshExpiresAt: s.token_expires_at, authTime: s.created_at, amr: sharedAmr(s.amr) };
    if (req.generation === s.generation - 1 && s.previous_rotated_at !== null && s.now - s.previous_rotated_at <= req.reuseIntervalMs) {
      if (s.previous_hash !== req.hash) return { outcome: 'invalid', why: 'unknown' };
      return { outcome: 'retried', user: liveOf(s), sealedSuccessor: s.previous_sealed!, ...times };
    }
    // Only a tag the service holds proves this old token was ever issued.
    if (!req.tagged) return { outcome: 'invalid', why: 'unknown' };
    // An older generation, or the previous one past the interval: the token was stolen or leaked.
    await this.one('auth_delete_session', 'DELETE FROM auth_sessions WHERE id = $2 AND user_id = $1', [req.userId, req.sessionId]);
    return { outcome: 'reused', sessionId: req.sessionId, userId: req.userId };
  }

  async revokeSessionByRefreshToken(token: ParsedRefreshToken): Promise<{ sessionId: string; userId: string } | undefined> {
    const rows = await this.one(
      'auth_revoke_by_token',
      `DELETE FROM auth_sessions WHERE id = $2 AND user_id = $1 AND $3 <= generation
         AND CASE WHEN $3 = generation THEN token_hash = $4 ELSE $5 END
       RETURNING id`,
      [token.userId, token.sessionId, token.generation, token.hash, token.tagged],
    );
    return rows.length === 1 ? { sessionId: token.sessionId, userId: token.userId } : undefined;
  }

  /**
   * The check behind every Validate and every call through the interceptor. Lookups that arrive
   * in the same turn of the event loop go to PostgreSQL as one statement (DataLoader, at most
   * LIVE_BATCH sessions a statement): under load one round trip answers many calls, and each
   * still sees the session as the database has it at that moment.
   */
  liveSession(userId: string, sessionId: string): Promise<LiveUser | undefined> {
    return this.liveSessions.load({ userId, sessionId });
  }

  private readonly liveSessions = new DataLoader<{ userId: string; sessionId: string }, LiveUser | undefined, string>(
    async (keys) => {
      const rows = await this.one<{ session_id: string; user_id: string; id: string; username: string; roles: string[]; revision: number }>(
        'auth_live_sessions',
        `SELECT s.id AS session_id, s.user_id, u.id, u.username, u.roles, u.revision
         FROM auth_sessions s JOIN auth_users u ON u.id = s.user_id, (SELECT ${now(3)} AS now) n
         WHERE s.id = ANY ($1::text[]) AND ${ACTIVE('$2')}`,
        [keys.map((k) => k.sessionId), this.grace, this.fixedNow()],
      );
      const found = new Map(rows.map((r) => [r.session_id, r]));
      // A session is only ever its own user's.
      return keys.map((k) => {
        const row = found.get(k.sessionId);
        return row !== undefined && row.user_id === k.userId ? liveOf(row) : undefined;
      });
    },
    { cache: false, maxBatchSize: LIVE_BATCH, batchScheduleFn: (run) => setImmediate(run) },
  );

  async listSessions(userId: string): Promise<SessionInfo[]> {
    const rows = await this.one<{ id: string; user_id: string; created_at: number; last_refreshed_at: number; expires_at: number; token_expires_at: number; client_address: string; user_agent: string }>(
      'auth_list_sessions',
      `SELECT ${SESSION_INFO.split(', ').map((c) => `s.${c}`).join(', ')}
       FROM auth_sessions s JOIN auth_users u ON u.id = s.user_id, (SELECT ${now(3)} AS now) n
       WHERE s.user_id = $1 AND ${ACTIVE('$2')}
       ORDER BY s.seq DESC`,
      [userId, this.grace, this.fixedNow()],
    );
    return rows.map((r) => ({
      id: r.id,
      userId: r.user_id,
      createdAt: r.created_at,
      lastRefreshedAt: Math.max(r.last_refreshed_at, r.created_at),
      expiresAt: r.expires_at,
      refreshExpiresAt: r.token_expires_at,
      clientAddress: r.client_address,
      userAgent: r.user_agent,
    }));
  }

  async revokeSession(userId: string, sessionId: string): Promise<boolean> {
    const rows = await this.one(
      'auth_revoke_session',
      `DELETE FROM auth_sessions s USING auth_users u, (SELECT ${now(4)} AS now) n
       WHERE s.id = $2 AND s.user_id = $1 AND u.id = s.user_id AND ${ACTIVE('$3')}
       RETURNING s.id`,
      [userId, sessionId, this.grace, this.fixedNow()],
    );
    return rows.length === 1;
  }

  // --- service accounts -------------------------------------------------------------------

  async createServiceAccount(account: { id: string; name: string; roles: readonly string[]; credential: NewCredential }): Promise<'created' | 'exists'> {
    const rows = await this.one(
      'auth_create_account',
      `INSERT INTO auth_service_accounts (${ACCOUNT})
       SELECT $1::text, $2::text, $3::text[], false, t, 1, jsonb_build_array($4::jsonb || jsonb_build_object('createdAt', t)) FROM (SELECT ${now(5)} AS t) n
       ON CONFLICT DO NOTHING RETURNING id`,
      [account.id, account.name, [...account.roles], JSON.stringify(account.credential), this.fixedNow()],
    );
    return rows.length === 1 ? 'created' : 'exists';
  }

  async getServiceAccount(id: string): Promise<ServiceAccountRecord | undefined> {
    const rows = await this.one<AccountRow>('auth_account_by_id', `SELECT ${ACCOUNT} FROM auth_service_accounts WHERE id = $1`, [id]);
    return rows[0] && accountOf(rows[0]);
  }

  async listServiceAccounts(query: UserQuery): Promise<ServiceAccountRecord[]> {
    return (await this.keysetPage<AccountRow>('auth_list_accounts', ACCOUNT, 'auth_service_accounts', 'name', query)).map(accountOf);
  }

  async updateServiceAccount(id: string, change: ServiceAccountChange): Promise<ServiceAccountUpdate> {
    const guarded = mayDemote(change) && change.keepAnAdmin === true;
    return this.tx(async (q): Promise<ServiceAccountUpdate> => {
      if (guarded) await PostgresStore.lockAdmins(q);
      const rows = await q<AccountRow & { now: number }>('auth_lock_account', `SELECT ${ACCOUNT}, ${now(2)} AS now FROM auth_service_accounts WHERE id = $1 FOR UPDATE`, [id, this.fixedNow()]);
      const row = rows[0];
      if (!row) return { outcome: 'not_found' };
      const current = accountOf(row);
      if (guarded && isEnabledAdmin(current) && !(await PostgresStore.anotherAdmin(q, id))) return { outcome: 'last_admin' };
      const result = applyServiceAccountChange(current, change, row.now);
      if (result.outcome !== 'updated') return result;
      const { account } = result;
      await q('auth_update_account', 'UPDATE auth_service_accounts SET roles = $2::text[], disabled = $3, revision = $4, credentials = $5::jsonb WHERE id = $1', [
        id,
        [...account.roles],
        account.disabled,
        account.revision,
        JSON.stringify(account.credentials),
      ]);
      return result;
    });
  }

  async deleteServiceAccount(id: string, options: { readonly keepAnAdmin?: boolean } = {}): Promise<boolean | 'last_admin'> {
    return this.tx(async (q) => {
      if (options.keepAnAdmin) await PostgresStore.lockAdmins(q);
      const rows = await q<AccountRow>('auth_lock_account_only', `SELECT ${ACCOUNT} FROM auth_service_accounts WHERE id = $1 FOR UPDATE`, [id]);
      const row = rows[0];
      if (!row) return false;
      if (options.keepAnAdmin && isEnabledAdmin(row) && !(await PostgresStore.anotherAdmin(q, id))) return 'last_admin';
      await q('auth_delete_account', 'DELETE FROM auth_service_accounts WHERE id = $1', [id]);
      await q('auth_delete_assertions', 'DELETE FROM auth_assertions WHERE account_id = $1', [id]);
      return true;
    });
  }

  async liveCredential(serviceAccountId: string, credentialId: string): Promise<LiveUser | undefined> {
    const account = await this.getServiceAccount(serviceAccountId);
    return account && liveAccount(account, credentialId);
  }

  /** The jti's row is taken unless a live one holds it: the unique key decides among instances. */
  async useAssertion(serviceAccountId: string, jti: string, expiresAt: number): Promise<boolean> {
    const rows = await this.one(
      'auth_use_assertion',
      `INSERT INTO auth_assertions AS a (account_id, jti, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (account_id, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE a.expires_at <= ${now(4)}
       RETURNING 1`,
      [serviceAccountId, jti, expiresAt, this.fixedNow()],
    );
    return rows.length === 1;
  }

  // --- user secrets -----------------------------------------------------------------------

  async readUserSecrets(userId: string): Promise<UserSecretsRecord | undefined> {
    // version is a bigint (node-postgres reads it as text); every value the sequence gives is below 2^53.
    const rows = await this.one<{ version: string; data: string }>('auth_read_secrets', 'SELECT version, data FROM auth_user_secrets WHERE user_id = $1', [userId]);
    return rows[0] ? { version: Number(rows[0].version), data: rows[0].data } : undefined;
  }

  /** Compare-and-set on the version, with the user's row share-locked so a delete cannot pass between. */
  async writeUserSecrets(userId: string, ifVersion: number, data: string | undefined): Promise<'written' | 'conflict' | 'user_gone'> {
    return this.tx(async (q) => {
      if ((await q('auth_secrets_user', 'SELECT 1 FROM auth_users WHERE id = $1 FOR SHARE', [userId])).length === 0) return 'user_gone';
      let changed: unknown[];
      if (data === undefined) {
        changed = await q('auth_delete_secrets', 'DELETE FROM auth_user_secrets WHERE user_id = $1 AND version = $2 RETURNING 1', [userId, ifVersion]);
      } else if (ifVersion === 0) {
        // Versions come from one sequence: never repeated, not even for a user made again with a deleted one's id.
        changed = await q('auth_insert_secrets', "INSERT INTO auth_user_secrets (user_id, version, data) VALUES ($1, nextval('auth_user_secrets_version'), $2) ON CONFLICT (user_id) DO NOTHING RETURNING 1", [userId, data]);
      } else {
        changed = await q('auth_update_secrets', "UPDATE auth_user_secrets SET version = nextval('auth_user_secrets_version'), data = $3 WHERE user_id = $1 AND version = $2 RETURNING 1", [userId, ifVersion, data]);
      }
      return changed.length === 1 ? 'written' : 'conflict';
    });
  }

  // --- registration rate ------------------------------------------------------------------

  /** A fixed window per key in one upsert: the row's lock orders concurrent hits, the WHERE refuses past the limit. */
  async hitRate(key: string, limit: number, windowMs: number): Promise<{ allowed: boolean; retryAfterMs: number }> {
    const rows = await this.one<{ allowed: boolean; wait: number }>(
      'auth_hit_rate',
      `WITH n AS (SELECT ${now(4)} AS now),
       hit AS (
         INSERT INTO auth_rate_windows AS r (key, count, ends_at) SELECT $1::text, 1, (n.now / $3::bigint) * $3 + $3 FROM n
         ON CONFLICT (key) DO UPDATE SET
           count = CASE WHEN r.ends_at <= ${now(4)} THEN 1 ELSE r.count + 1 END,
           ends_at = CASE WHEN r.ends_at <= ${now(4)} THEN EXCLUDED.ends_at ELSE r.ends_at END
         WHERE r.ends_at <= ${now(4)} OR r.count < $2
         RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM hit) AS allowed,
              coalesce((SELECT ends_at FROM auth_rate_windows WHERE key = $1), (SELECT (now / $3) * $3 + $3 FROM n)) - (SELECT now FROM n) AS wait`,
      [key, limit, windowMs, this.fixedNow()],
    );
    const row = rows[0]!;
    return row.allowed ? { allowed: true, retryAfterMs: 0 } : { allowed: false, retryAfterMs: Math.max(0, row.wait) };
  }

  // --- login attempts ---------------------------------------------------------------------

  /**
   * One key's entry locked for the transaction: the upsert takes the row's lock whether it was
   * there or not (a placeholder that counts as absent), so concurrent attempts on a key queue.
   */
  private async lockedAttempt(q: Query, key: string): Promise<{ entry: AttemptEntry | undefined; now: number }> {
    const rows = await q<{ failures: number; in_flight: number; last_failure_at: number; expires_at: number; now: number }>(
      'auth_lock_attempt',
      `INSERT INTO auth_attempts AS a (key, failures, in_flight, last_failure_at, expires_at) VALUES ($1, 0, 0, 0, 0)
       ON CONFLICT (key) DO UPDATE SET key = a.key
       RETURNING failures, in_flight, last_failure_at, expires_at, ${now(2)} AS now`,
      [key, this.fixedNow()],
    );
    const r = rows[0]!;
    return { entry: r.now < r.expires_at ? { failures: r.failures, inFlight: r.in_flight, lastFailureAt: r.last_failure_at, expiresAt: r.expires_at } : undefined, now: r.now };
  }

  private static async writeAttempt(q: Query, key: string, next: AttemptEntry | null | undefined, was: AttemptEntry | undefined): Promise<void> {
    if (next === null || (next === undefined && was === undefined)) {
      await q('auth_delete_attempt', 'DELETE FROM auth_attempts WHERE key = $1', [key]);
    } else if (next) {
      await q('auth_write_attempt', 'UPDATE auth_attempts SET failures = $2, in_flight = $3, last_failure_at = $4, expires_at = $5 WHERE key = $1', [
        key,
        next.failures,
        next.inFlight,
        next.lastFailureAt,
        next.expiresAt,
      ]);
    }
  }

  async checkAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    const rows = await this.one<{ failures: number; in_flight: number; last_failure_at: number; expires_at: number; now: number }>(
      'auth_check_attempt',
      `SELECT a.failures, a.in_flight, a.last_failure_at, a.expires_at, n.now FROM (SELECT ${now(2)} AS now) n LEFT JOIN auth_attempts a ON a.key = $1`,
      [key, this.fixedNow()],
    );
    const r = rows[0]!;
    const entry = r.expires_at !== null && r.now < r.expires_at ? { failures: r.failures, inFlight: r.in_flight, lastFailureAt: r.last_failure_at, expiresAt: r.expires_at } : undefined;
    return checkRule(entry, r.now, policy);
  }

  async beginAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    return this.tx(async (q) => {
      const { entry, now: t } = await this.lockedAttempt(q, key);
      const { grant, next } = beginRule(entry, t, policy);
      await PostgresStore.writeAttempt(q, key, next, entry);
      return grant;
    });
  }

  async endAttempt(key: string, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void> {
    await this.tx(async (q) => {
      const { entry, now: t } = await this.lockedAttempt(q, key);
      await PostgresStore.writeAttempt(q, key, endRule(entry, t, policy, outcome), entry);
    });
  }

  async recordFailure(key: string, policy: BackoffPolicy): Promise<void> {
    await this.tx(async (q) => {
      const { entry, now: t } = await this.lockedAttempt(q, key);
      await PostgresStore.writeAttempt(q, key, recordRule(entry, t, policy), entry);
    });
  }

  async resetAttempts(key: string): Promise<void> {
    await this.one('auth_delete_attempt', 'DELETE FROM auth_attempts WHERE key = $1', [key]);
  }

  // --- moving in (grpc-auth import) -------------------------------------------------------

  /**
   * Writes exported users and service accounts as they were (ids, hashes, times, credentials),
   * in transactions of a thousand. One already here by id is left alone (counted as present); a
   * name that belongs to another id here stops the import with both named. A user gets the
   * skeleton of their name unless another user holds it (users made before skeletons were kept).
   */
  async importRecords(
    records: ReadonlyArray<({ readonly kind: 'user'; readonly secondFactor?: SecondFactorExport | undefined } & UserRecord) | ({ readonly kind: 'service_account' } & ServiceAccountRecord)>,
    skeletonOf: (username: string) => string,
  ): Promise<{ users: number; serviceAccounts: number; present: number }> {
    // Names held here by other ids stop the import before anything is written.
    for (let i = 0; i < records.length; i += SWEEP_BATCH) {
      const batch = records.slice(i, i + SWEEP_BATCH);
      const users = batch.filter((r) => r.kind === 'user');
      const accounts = batch.filter((r) => r.kind === 'service_account');
      const held = [
        ...(await this.one<{ id: string; name: string }>('auth_import_names', 'SELECT id, username AS name FROM auth_users WHERE username = ANY ($1::text[])', [users.map((u) => u.username)])).map((h) => ({ ...h, kind: 'user' })),
        ...(await this.one<{ id: string; name: string }>('auth_import_account_names', 'SELECT id, name FROM auth_service_accounts WHERE name = ANY ($1::text[])', [accounts.map((a) => a.name)])).map((h) => ({ ...h, kind: 'service_account' })),
      ];
      for (const h of held) {
        const r = batch.find((x) => x.kind === h.kind && (x.kind === 'user' ? x.username : x.name) === h.name)!;
        if (r.id !== h.id) throw new ImportConflictError(`${h.kind === 'user' ? 'user' : 'service account'} ${r.id}: the name ${JSON.stringify(h.name)} belongs to ${h.id} in this database`);
      }
    }
    const counts = { users: 0, serviceAccounts: 0, present: 0 };
    for (let i = 0; i < records.length; i += SWEEP_BATCH) {
      const batch = records.slice(i, i + SWEEP_BATCH);
      const done = await this.tx(async (q) => {
        const c = { users: 0, serviceAccounts: 0, present: 0 };
        for (const r of batch) {
          if (r.kind === 'user') {
            const insert = (skeleton: string | null) =>
              q(
                'auth_import_user',
                `INSERT INTO auth_users (${USER}, skeleton) VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING RETURNING id`,
                [r.id, r.username, r.passwordHash, [...r.roles], r.disabled, r.generation, r.revision, r.origin, r.fileDigest ?? null, r.createdAt, r.passwordChangedAt, skeleton],
              );
            // A user's second factor goes in with the user, in the same transaction (never a user without the factor they had).
            const inserted = async () => {
              c.users++;
              if (r.secondFactor) await q('auth_import_secrets', "INSERT INTO auth_user_secrets (user_id, version, data) VALUES ($1, nextval('auth_user_secrets_version'), $2)", [r.id, JSON.stringify(r.secondFactor)]);
            };
            if ((await insert(skeletonOf(r.username))).length === 1) {
              await inserted();
              continue;
            }
            const [holder] = await q<{ id: string }>('auth_import_user_holder', 'SELECT id FROM auth_users WHERE id = $1 OR username = $2 ORDER BY id = $1 DESC', [r.id, r.username]);
            if (holder?.id === r.id) c.present++;
            else if (holder) throw new ImportConflictError(`user ${r.id}: the name ${JSON.stringify(r.username)} belongs to ${holder.id} in this database`);
            else if ((await insert(null)).length === 1) await inserted();
          } else {
            const inserted = await q(
              'auth_import_account',
              `INSERT INTO auth_service_accounts (${ACCOUNT}) VALUES ($1, $2, $3::text[], $4, $5, $6, $7::jsonb) ON CONFLICT DO NOTHING RETURNING id`,
              [r.id, r.name, [...r.roles], r.disabled, r.createdAt, r.revision, JSON.stringify(r.credentials)],
            );
            if (inserted.length === 1) {
              c.serviceAccounts++;
              continue;
            }
            const [holder] = await q<{ id: string }>('auth_import_account_holder', 'SELECT id FROM auth_service_accounts WHERE id = $1 OR name = $2 ORDER BY id = $1 DESC', [r.id, r.name]);
            if (holder?.id === r.id) c.present++;
            else throw new ImportConflictError(`service account ${r.id}: the name ${JSON.stringify(r.name)} belongs to ${holder?.id ?? 'another account'} in this database`);
          }
        }
        return c;
      });
      counts.users += done.users;
      counts.serviceAccounts += done.serviceAccounts;
      counts.present += done.present;
    }
    return counts;
  }

  // --- upkeep -----------------------------------------------------------------------------

  private sweeping: Promise<Record<string, number>> | undefined;

  /**
   * Deletes what can no longer be valid, in batches of SWEEP_BATCH rows a statement and at most
   * SWEEP_BATCHES statements a table a run (the next run goes on): sessions past their purge
   * time, expired assertion ids, throttle counters and rate windows. One sweep at a time; every
   * instance may sweep (the deletes are idempotent). Resolves with the rows deleted per table.
   */
  sweep(): Promise<Record<string, number>> {
    this.sweeping ??= this.sweepTables().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepTables(): Promise<Record<string, number>> {
    const tables: Array<[string, string, string]> = [
      ['sessions', 'auth_sessions', `id IN (SELECT id FROM auth_sessions WHERE purge_at <= ${now(1)} LIMIT ${SWEEP_BATCH})`],
      ['assertions', 'auth_assertions', `(account_id, jti) IN (SELECT account_id, jti FROM auth_assertions WHERE expires_at <= ${now(1)} LIMIT ${SWEEP_BATCH})`],
      ['attempts', 'auth_attempts', `key IN (SELECT key FROM auth_attempts WHERE expires_at <= ${now(1)} LIMIT ${SWEEP_BATCH})`],
      ['rates', 'auth_rate_windows', `key IN (SELECT key FROM auth_rate_windows WHERE ends_at <= ${now(1)} LIMIT ${SWEEP_BATCH})`],
    ];
    const deleted: Record<string, number> = {};
    for (const [name, table, where] of tables) {
      deleted[name] = 0;
      for (let i = 0; i < SWEEP_BATCHES; i++) {
        const started = performance.now();
        const client = await this.acquire(started);
        let count: number;
        let broken: Error | undefined;
        try {
          count = (await client.query({ name: `auth_sweep_${name}`, text: `DELETE FROM ${table} WHERE ${where}`, values: [this.fixedNow()] })).rowCount ?? 0;
        } catch (err) {
          broken = connectionBroken(err);
          throw err;
        } finally {
          client.release(broken);
        }
        deleted[name] += count;
        if (count < SWEEP_BATCH) break;
      }
    }
    return deleted;
  }

  /** Rows per table, for tests and the state budget. */
  async rowCounts(): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<Record<string, number>>(
      `SELECT (SELECT count(*) FROM auth_users)::int AS users, (SELECT count(*) FROM auth_sessions)::int AS sessions,
              (SELECT count(*) FROM auth_service_accounts)::int AS service_accounts, (SELECT count(*) FROM auth_assertions)::int AS assertions,
              (SELECT count(*) FROM auth_attempts)::int AS attempts, (SELECT count(*) FROM auth_rate_windows)::int AS rates`,
    );
    return rows[0]!;
  }
}

