import { readFileSync } from 'node:fs';
import type DataLoader from 'dataloader';
import pg, { type Pool, type PoolClient, type PoolConfig } from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';
import type { Clock } from '../../clock.js';
import type { UserQuery } from '../../core/accounts.js';
import type { LiveUser } from '../../core/records.js';
import { AuthError } from '../../errors.js';
import type { StoreObserver } from '../observer.js';
import { StoreSetupError } from '../store.js';
import { causeOf, connectionBroken, LATE, mayHaveFailedOver, refusedStartupParameter, retryable, sqlStateOf } from './errors.js';
import { checkNotNewer, knownMigrations, migrate, schemaState, type Migration } from './migrations.js';
import { TOP } from './records.js';
import { DatabaseClock } from './db-clock.js';
import { findWritable, hostName, parseDatabaseUrl, type DatabaseUrl, type HostPort } from '../../database-url.js';

/**
 * Where PostgreSQL is: a URL (`sslmode` and the like in its query; several hosts, libpq's way, to
 * fail over; `pgbouncer=true` behind a pooler in transaction mode), and a CA to verify the server by.
 */
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
  /** Told of what an operator watches: failovers, retries, waits for a connection, failures (metrics, logs). */
  readonly observer?: PostgresObserver;
}

/** What the PostgreSQL store tells the service around it (all optional). */
export type PostgresObserver = Omit<StoreObserver, 'swept'>;

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

/** In a statement's values: the write's deadline (`deadline()`), taken as it is sent, after any wait for a connection. */
export const DEADLINE: unique symbol = Symbol('the write deadline');

/** A statement of a transaction: its prepared name, its text, its values; its rows. */
export type Query = <R = Record<string, unknown>>(name: string, text: string, values: unknown[]) => Promise<R[]>;

/** pg's types, with bigint (int8) read as a number: the store's bigints are epoch milliseconds, far below 2^53. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

/**
 * The pool's settings for one host: TLS from the URL (sslmode, sslrootcert) or the CA file. Behind
 * a pooler in transaction mode, no startup parameters but the application's name: each
 * transaction sets its own timeouts (see PostgresBase.tx).
 */
export function poolConfig(options: Pick<PostgresStoreOptions, 'connection' | 'statementTimeoutMs'>, url?: string, pooler = false): PoolConfig {
  const { connection, statementTimeoutMs } = options;
  const first = () => {
    const database = parseDatabaseUrl(connection.url);
    return database.urlFor(database.hosts[0]!);
  };
  const parsed = parseConnectionString(url ?? first());
  const ssl =
    connection.caFile === undefined
      ? parsed.ssl
      : { ...(typeof parsed.ssl === 'object' ? parsed.ssl : {}), ca: readFileSync(connection.caFile, 'utf8'), rejectUnauthorized: true };
  const serverTimeouts = pooler
    ? {}
    : { statement_timeout: statementTimeoutMs, lock_timeout: statementTimeoutMs, idle_in_transaction_session_timeout: idleInTransactionMs(statementTimeoutMs) };
  return {
    ...(parsed as PoolConfig),
    ssl: ssl as PoolConfig['ssl'],
    port: parsed.port ? Number(parsed.port) : 5432,
    max: connection.poolSize,
    connectionTimeoutMillis: Math.max(statementTimeoutMs, 1000),
    idleTimeoutMillis: 30_000,
    ...serverTimeouts,
    query_timeout: statementTimeoutMs + ANSWER_SLACK_MS,
    application_name: 'grpc-auth',
    types: TYPES,
  };
}

const idleInTransactionMs = (statementTimeoutMs: number) => Math.max(10 * statementTimeoutMs, 5000);

/** An import record whose name belongs to another id here (grpc-auth import stops, naming both). */
export class ImportConflictError extends Error {
  override readonly name = 'ImportConflictError';
}

/**
 * The system of record on PostgreSQL (node-postgres): users, service accounts and their
 * credentials, sessions and refresh-token state, assertion ids, throttles, all in one database,
 * so PostgreSQL alone is a complete deployment. Every decision is one statement or one
 * transaction that is correct under READ COMMITTED: a row lock (`FOR UPDATE`, or the lock an
 * `UPDATE` or `INSERT … ON CONFLICT` takes) orders concurrent writers, and each later statement
 * of a transaction sees what they committed; serialization failures and deadlocks are retried.
 * (A login's throttle reservation reads, then writes by compare-and-set: attempts.ts.)
 *
 * Every operation is bounded: a connection must come from the pool within the operation's budget
 * (twice the statement timeout), the server cancels a statement past the statement timeout (lock
 * waits included), and a transaction past its budget rolls back instead of committing, so a write
 * the caller was told failed (UNAVAILABLE) does not land later. The base of PostgresStore, and the
 * one module that imports pg: the pool, the statement and transaction helpers, the schema,
 * health and the lifecycle, and what several ports share (paging, the last-admin rule).
 */
export abstract class PostgresBase {
  /** The pool of the host written to now; replaced when the store fails over to another host. */
  protected pool: Pool;
  protected readonly database: DatabaseUrl;
  protected host: HostPort;
  /** Behind a pooler in transaction mode: unnamed statements, timeouts set in each transaction. */
  protected pooler: boolean;
  protected readonly budgetMs: number;
  protected readonly grace: number;
  protected readonly migrations: readonly Migration[];
  protected ready = false;
  protected closed = false;
  /** The database's clock, read by every health check, for the deadlines of writes. */
  protected readonly dbClock = new DatabaseClock(ANSWER_SLACK_MS);
  private reselecting: Promise<void> | undefined;

  /** Session checks of one event-loop turn, answered by one statement (sessions.ts). */
  protected liveLoader: DataLoader<{ userId: string; sessionId: string }, LiveUser | undefined, string> | undefined;
  /** The sweep under way, if any (upkeep.ts): one at a time. */
  protected sweeping: Promise<Record<string, number>> | undefined;
  /** The last count of live sessions (upkeep.ts). */
  protected counted: { at: number; count: Promise<number> } | undefined;

  constructor(protected readonly options: PostgresStoreOptions) {
    this.database = parseDatabaseUrl(options.connection.url);
    this.host = this.database.hosts[0]!;
    this.pooler = this.database.pooler ?? false;
    this.pool = this.makePool(this.host);
    this.budgetMs = 2 * options.statementTimeoutMs;
    this.grace = options.accessGraceMs;
    this.migrations = options.migrations ?? knownMigrations();
  }

  private makePool(host: HostPort): Pool {
    const pool = new pg.Pool(poolConfig(this.options, this.database.urlFor(host), this.pooler));
    // An idle connection that breaks (the server restarted) is dropped; the next call opens another.
    pool.on('error', () => {});
    // A connection that breaks while checked out fails the query it runs (which the caller hears);
    // pg-pool listens for errors only on idle ones, so without this an unheard 'error' would end the process.
    pool.on('connect', (client) => client.on('error', () => {}));
    return pool;
  }

  /** Moves to another pool (another host, or pooler mode); the old one closes once its connections come back. */
  private replacePool(host: HostPort): void {
    const old = this.pool;
    this.host = host;
    this.pool = this.makePool(host);
    void old.end().catch(() => {});
  }

  /** The pool, for tests and the tools (export, import). */
  get client(): Pool {
    return this.pool;
  }

  /** Where the store writes now (host:port), and whether it works as behind a pooler. */
  get target(): { host: string; pooler: boolean } {
    return { host: hostName(this.host), pooler: this.pooler };
  }

  /** `$n` for the store's time: the test clock's, or null for the database's own. */
  protected fixedNow(): number | null {
    return this.options.clock ? this.options.clock.now() : null;
  }

  /**
   * A write's deadline on the database's clock (for `auth_on_time`): when this instance stops
   * waiting for the answer to a statement sent now (statement timeout plus the answer slack), less
   * how far off the clock reading may be, so a statement that reaches the server after the caller
   * was told UNAVAILABLE (a frozen server, a slow network) fails there instead of writing. Null
   * before the first reading (connect takes one).
   */
  protected deadline(): number | null {
    return this.dbClock.deadline(this.options.statementTimeoutMs + ANSWER_SLACK_MS);
  }

  protected unavailable(cause: unknown): Error {
    if (cause instanceof ImportConflictError) return cause;
    if (!(cause instanceof AuthError)) this.options.observer?.failed?.(causeOf(cause));
    if (sqlStateOf(cause) === LATE) return new AuthError('unavailable', UNAVAILABLE, { cause: new Error('the statement reached the database after its deadline; nothing was written') });
    return cause instanceof AuthError ? cause : new AuthError('unavailable', UNAVAILABLE, { cause });
  }

  /** After a failure: with several hosts, one that may mean a failover starts the search for the writable host. */
  private noticeFailure(err: unknown): void {
    if (this.database.hosts.length > 1 && mayHaveFailedOver(err)) void this.reselect().catch(() => {});
  }

  /** A connection, or UNAVAILABLE: one that only comes after the operation's budget is given back unused. */
  protected async acquire(started: number): Promise<PoolClient> {
    if (this.closed) throw new AuthError('unavailable', UNAVAILABLE, { cause: new Error('the store is closed') });
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      if (this.pooler || !refusedStartupParameter(err)) {
        this.noticeFailure(err);
        throw err;
      }
      // PgBouncer in transaction mode: no startup parameters, unnamed statements from now on.
      this.pooler = true;
      this.options.observer?.poolerDetected?.();
      this.replacePool(this.host);
      client = await this.pool.connect();
    }
    const waited = performance.now() - started;
    this.options.observer?.acquired?.(waited);
    if (waited > this.budgetMs) {
      client.release();
      throw new AuthError('unavailable', UNAVAILABLE, { cause: new Error('no database connection within the budget; nothing was sent') });
    }
    return client;
  }

  /**
   * Runs a statement: prepared under `name`, or unnamed behind a pooler (a transaction-mode pooler
   * cannot keep named ones). A DEADLINE among the values becomes the deadline as it is sent.
   */
  protected query<R>(client: PoolClient, name: string, text: string, values: unknown[]): Promise<pg.QueryResult<R & pg.QueryResultRow>> {
    const sent = values.includes(DEADLINE) ? values.map((v) => (v === DEADLINE ? this.deadline() : v)) : values;
    return client.query<R & pg.QueryResultRow>(this.pooler ? { text, values: sent } : { name, text, values: sent });
  }

  protected queryOn(client: PoolClient): Query {
    return async <R>(name: string, text: string, values: unknown[]) => (await this.query<R>(client, name, text, values)).rows as R[];
  }

  /** One statement on its own (autocommit): its rows, or with `count`, how many it changed. */
  private async single<T>(name: string, text: string, values: unknown[], take: (r: pg.QueryResult) => T): Promise<T> {
    const started = performance.now();
    try {
      const client = await this.acquire(started);
      let broken: Error | undefined;
      try {
        return take(await this.query(client, name, text, values));
      } catch (err) {
        broken = connectionBroken(err);
        this.noticeFailure(err);
        throw err;
      } finally {
        client.release(broken);
      }
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** One statement on its own (autocommit), as a prepared statement named `name`. A write passes DEADLINE to `auth_on_time` (records.ts `onTime`). */
  protected one<R = Record<string, unknown>>(name: string, text: string, values: unknown[]): Promise<R[]> {
    return this.single(name, text, values, (r) => r.rows as R[]);
  }

  /** The rows one statement changed (a DELETE's count, say), run as `one` runs it. */
  protected changed(name: string, text: string, values: unknown[]): Promise<number> {
    return this.single(name, text, values, (r) => r.rowCount ?? 0);
  }

  /**
   * A transaction (READ COMMITTED): `body` runs its statements; past the budget it rolls back
   * rather than commit late; a serialization failure or deadlock runs it again, within the budget.
   * COMMIT goes in one message after `auth_on_time`: a COMMIT that reaches a frozen server is not
   * run after the caller gave up. Behind a pooler the timeouts are set for the transaction itself.
   */
  protected async tx<T>(body: (q: Query) => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      for (let attempt = 1; ; attempt++) {
        const client = await this.acquire(started);
        let broken: Error | undefined;
        try {
          await client.query(this.pooler ? this.beginWithTimeouts() : 'BEGIN');
          const result = await body(this.queryOn(client));
          if (performance.now() - started > this.budgetMs) throw new AuthError('unavailable', UNAVAILABLE, { cause: new Error('the transaction ran past its budget; rolled back') });
          const deadline = this.deadline();
          await client.query(deadline === null ? 'COMMIT' : `SELECT auth_on_time(${deadline}); COMMIT`);
          return result;
        } catch (err) {
          broken = connectionBroken(err);
          this.noticeFailure(err);
          if (!broken) await client.query('ROLLBACK').catch((e: Error) => (broken = e));
          if (retryable(err) && attempt < MAX_TRIES && performance.now() - started < this.budgetMs) {
            this.options.observer?.retried?.(sqlStateOf(err)!);
            continue;
          }
          throw err;
        } finally {
          client.release(broken);
        }
      }
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** BEGIN with the timeouts a direct connection gets at start-up, for this transaction only (one message). */
  private beginWithTimeouts(): string {
    const t = this.options.statementTimeoutMs;
    return `BEGIN; SET LOCAL statement_timeout = ${t}; SET LOCAL lock_timeout = ${t}; SET LOCAL idle_in_transaction_session_timeout = ${idleInTransactionMs(t)}`;
  }

  // --- lifecycle --------------------------------------------------------------------------

  /**
   * Connects and brings the schema to this release's version (AUTH_DATABASE_MIGRATE=auto), or
   * checks that it is there (off). Rejects with `unavailable` while PostgreSQL cannot be reached,
   * with StoreSetupError when the schema can never serve this release.
   */
  async connect(): Promise<void> {
    if (this.database.hosts.length > 1) await this.reselect();
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
      if (refusedStartupParameter(err) && !this.pooler) {
        this.pooler = true;
        this.options.observer?.poolerDetected?.();
        this.replacePool(this.host);
        return this.ensureSchema();
      }
      this.noticeFailure(err);
      throw this.unavailable(err);
    }
    this.ready = true;
  }

  /**
   * Resolves when the store can serve: the schema is this release's, and the server is a primary
   * that takes writes (a hot standby, or one set read-only, cannot serve), reached through the
   * pool within the budget (a pool whose connections are all busy cannot serve either). With
   * several hosts, a failed check looks for the writable one and checks again.
   */
  async ping(): Promise<void> {
    await this.ensureSchema();
    try {
      await this.checkWritable();
    } catch (err) {
      if (this.database.hosts.length < 2 || this.closed) throw err;
      await this.reselect();
      await this.checkWritable();
    }
  }

  /** The health check's statement; it also reads the database's clock for the write deadlines. */
  private async checkWritable(): Promise<void> {
    const started = performance.now();
    const row = await (async () => {
      try {
        const client = await this.acquire(started);
        let broken: Error | undefined;
        try {
          const sent = performance.now();
          const rows = (
            await this.query<{ standby: boolean; read_only: string; db_now: number }>(
              client,
              'auth_ping',
              "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS read_only, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS db_now",
              [],
            )
          ).rows;
          this.dbClock.read(rows[0]!.db_now, sent, performance.now());
          return rows[0]!;
        } catch (err) {
          broken = connectionBroken(err);
          throw err;
        } finally {
          client.release(broken);
        }
      } catch (err) {
        throw this.unavailable(err);
      }
    })();
    if (row.standby || row.read_only === 'on') {
      throw new AuthError('unavailable', UNAVAILABLE, { cause: new Error(`${hostName(this.host)} is ${row.standby ? 'a standby (in recovery): it takes no writes' : 'read-only'}`) });
    }
  }

  /**
   * Finds the host to write to (libpq's target_session_attrs=read-write): the current one first,
   * then the others in the URL's order, each asked whether it is in recovery or read-only over a
   * connection of its own. The pool moves to the first writable one. One search at a time.
   */
  private reselect(): Promise<void> {
    this.reselecting ??= this.findWritable().finally(() => (this.reselecting = undefined));
    return this.reselecting;
  }

  private async findWritable(): Promise<void> {
    const host = await findWritable(this.database, this.host, async (h) => {
      const client = new pg.Client(poolConfig(this.options, this.database.urlFor(h), this.pooler));
      client.on('error', () => {});
      try {
        await client.connect();
        const { rows } = await client.query<{ standby: boolean; read_only: string }>("SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS read_only");
        return { standby: rows[0]!.standby, readOnly: rows[0]!.read_only === 'on' };
      } finally {
        await client.end().catch(() => {});
      }
    }).catch((cause: unknown) => {
      throw new AuthError('unavailable', UNAVAILABLE, { cause });
    });
    if (host !== this.host && !this.closed) {
      const from = hostName(this.host);
      this.replacePool(host);
      this.options.observer?.switched?.(from, hostName(host));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reselecting?.catch(() => {});
    await this.pool.end();
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
