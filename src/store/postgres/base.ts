import { readFileSync } from 'node:fs';
import type DataLoader from 'dataloader';
import pg, { type Pool, type PoolClient, type PoolConfig } from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';
import type { Clock } from '../../clock.js';
import type { UserQuery } from '../../core/accounts.js';
import type { LiveUser } from '../../core/records.js';
import { AuthError } from '../../errors.js';
import { StoreSetupError } from '../store.js';
import { checkNotNewer, knownMigrations, migrate, schemaState, type Migration } from './migrations.js';
import { TOP } from './records.js';

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
export const SWEEP_BATCHES = 20;
/** Session checks answered by one statement at most (those of one event-loop turn). */
export const LIVE_BATCH = 256;
/** Attempts of an operation that hit a serialization failure or a deadlock (40001, 40P01). */
const MAX_TRIES = 3;
/** Extra wait for the server's own answer past statement_timeout, so the client hears how it ended. */
const ANSWER_SLACK_MS = 250;

const UNAVAILABLE = 'session store unavailable';

/** A statement of a transaction: its prepared name, its text, its values; its rows. */
export type Query = <R = Record<string, unknown>>(name: string, text: string, values: unknown[]) => Promise<R[]>;

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
 * the caller was told failed (UNAVAILABLE) does not land later. The base of PostgresStore, and the
 * one module that imports pg: the pool, the statement and transaction helpers, the schema,
 * health and the lifecycle, and what several ports share (paging, the last-admin rule).
 */
export abstract class PostgresBase {
  protected readonly pool: Pool;
  protected readonly budgetMs: number;
  protected readonly grace: number;
  protected readonly migrations: readonly Migration[];
  protected ready = false;
  protected closed = false;

  /** Session checks of one event-loop turn, answered by one statement (sessions.ts). */
  protected liveLoader: DataLoader<{ userId: string; sessionId: string }, LiveUser | undefined, string> | undefined;
  /** The sweep under way, if any (upkeep.ts): one at a time. */
  protected sweeping: Promise<Record<string, number>> | undefined;

  constructor(protected readonly options: PostgresStoreOptions) {
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
  protected fixedNow(): number | null {
    return this.options.clock ? this.options.clock.now() : null;
  }

  protected unavailable(cause: unknown): Error {
    if (cause instanceof ImportConflictError) return cause;
    return cause instanceof AuthError ? cause : new AuthError('unavailable', UNAVAILABLE, { cause });
  }

  /** A connection, or UNAVAILABLE: one that only comes after the operation's budget is given back unused. */
  protected async acquire(started: number): Promise<PoolClient> {
    if (this.closed) throw new AuthError('unavailable', UNAVAILABLE, { cause: new Error('the store is closed') });
    const client = await this.pool.connect();
    if (performance.now() - started > this.budgetMs) {
      client.release();
      throw new AuthError('unavailable', UNAVAILABLE, { cause: new Error('no database connection within the budget; nothing was sent') });
    }
    return client;
  }

  protected static runOn(client: PoolClient): Query {
    return async <R>(name: string, text: string, values: unknown[]) => (await client.query({ name, text, values })).rows as R[];
  }

  /** One statement on its own (autocommit), as a prepared statement named `name`. */
  protected async one<R = Record<string, unknown>>(name: string, text: string, values: unknown[]): Promise<R[]> {
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
  protected async tx<T>(body: (q: Query) => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      for (let attempt = 1; ; attempt++) {
        const client = await this.acquire(started);
        let broken: Error | undefined;
        try {
          await client.query('BEGIN');
          const result = await body(PostgresBase.runOn(client));
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

  protected async ensureSchema(): Promise<void> {
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

  /** The rows one statement changed (a DELETE's count, say), run as `one` runs it. */
  protected async changed(name: string, text: string, values: unknown[]): Promise<number> {
    const started = performance.now();
    try {
      const client = await this.acquire(started);
      let broken: Error | undefined;
      try {
        return (await client.query({ name, text, values })).rowCount ?? 0;
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

  // --- shared by the ports ----------------------------------------------------------------

  /**
   * A page of `table` in `key` order (a unique, bytewise-sorted column): those after `after`,
   * starting with `prefix`. Keyset paging on the unique index, bounded above by the prefix, so a
   * page costs the same at any depth and never scans past the prefix's range.
   */
  protected keysetPage<R>(name: string, columns: string, table: string, key: string, query: UserQuery): Promise<R[]> {
    return this.one<R>(
      name,
      `SELECT ${columns} FROM ${table}
       WHERE ${key} >= $1 AND ${key} > $2 AND ${key} < $3 AND substr(${key}, 1, char_length($1)) = $1
       ORDER BY ${key} LIMIT $4`,
      [query.prefix, query.after ?? '', query.prefix + TOP, query.limit],
    );
  }

  /** Whether an enabled admin other than `id` remains (users and service accounts together), under the admin guard's lock. */
  protected static async anotherAdmin(q: Query, id: string): Promise<boolean> {
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
  protected static async lockAdmins(q: Query): Promise<void> {
    await q('auth_lock_admins', 'SELECT id FROM auth_admin_guard WHERE id = 1 FOR UPDATE', []);
  }
}
