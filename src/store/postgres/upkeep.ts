import { PostgresBase, SWEEP_BATCH, SWEEP_BATCHES } from './base.js';
import { ACTIVE, now } from './records.js';

/** How long a count of live sessions is reused before the next scrape counts again. */
const COUNT_REUSE_MS = 30_000;

/** Upkeep and what operators read: the sweeper, counts for the metrics and the stats command, the pool's state. */
export class PostgresUpkeep extends PostgresBase {
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

  protected async sweepTables(): Promise<Record<string, number>> {
    // [name, table, its key, what makes a row deletable]. The condition is checked again on the
    // row being deleted: under READ COMMITTED a DELETE that waited for a row another transaction
    // updated (a session rotated, a counter reserved) re-checks only its own WHERE on the new
    // version, not the subquery's, so without it a row made live again meanwhile would go.
    const tables: Array<[string, string, string, string]> = [
      ['sessions', 'auth_sessions', 'id', `purge_at <= ${now(1)}`],
      ['assertions', 'auth_assertions', '(account_id, jti)', `expires_at <= ${now(1)}`],
      ['attempts', 'auth_attempts', 'key', `expires_at <= ${now(1)}`],
      ['rates', 'auth_rate_windows', 'key', `ends_at <= ${now(1)}`],
      ['ceremonies', 'auth_ceremonies', 'id', `expires_at <= ${now(1)}`],
      ['api_keys', 'auth_api_keys', 'id', `(k.expires_at <= ${now(1)} OR NOT (EXISTS (SELECT 1 FROM auth_users WHERE id = k.owner_id) OR EXISTS (SELECT 1 FROM auth_service_accounts WHERE id = k.owner_id)))`],
    ];
    const deleted: Record<string, number> = {};
    for (const [name, table, key, deletable] of tables) {
      deleted[name] = 0;
      for (let i = 0; i < SWEEP_BATCHES; i++) {
        const columns = key.replace(/[()]/g, '');
        const count = await this.changed(`auth_sweep_${name}`, `DELETE FROM ${table} k WHERE ${key} IN (SELECT ${columns} FROM ${table} k WHERE ${deletable} LIMIT ${SWEEP_BATCH}) AND ${deletable}`, [this.fixedNow()]);
        deleted[name] += count;
        if (count < SWEEP_BATCH) break;
      }
    }
    return deleted;
  }

  /** Rows per table, for tests and the state budget. */
  async rowCounts(): Promise<Record<string, number>> {
    const rows = await this.one<Record<string, number>>(
      'auth_row_counts',
      `SELECT (SELECT count(*) FROM auth_users)::int AS users, (SELECT count(*) FROM auth_sessions)::int AS sessions,
              (SELECT count(*) FROM auth_service_accounts)::int AS service_accounts, (SELECT count(*) FROM auth_assertions)::int AS assertions,
              (SELECT count(*) FROM auth_attempts)::int AS attempts, (SELECT count(*) FROM auth_rate_windows)::int AS rates,
              (SELECT count(*) FROM auth_passkeys)::int AS passkeys, (SELECT count(*) FROM auth_ceremonies)::int AS ceremonies`,
      [],
    );
    return rows[0]!;
  }

  /** Active sessions, every instance's (for the auth_sessions_live gauge): counted at most every 30 s, the count kept between. */
  liveSessionCount(): Promise<number> {
    const cached = this.counted;
    if (cached && performance.now() - cached.at < COUNT_REUSE_MS) return cached.count;
    const count = this.one<{ n: number }>(
      'auth_live_session_count',
      `SELECT count(*)::int AS n FROM auth_sessions s JOIN auth_users u ON u.id = s.user_id, (SELECT ${now(2)} AS now) n WHERE ${ACTIVE('$1')}`,
      [this.grace, this.fixedNow()],
    ).then((rows) => rows[0]!.n);
    this.counted = { at: performance.now(), count: count.catch(() => 0) };
    return count;
  }

  /** The migration the database is at (0 before the first). */
  async schemaVersion(): Promise<number> {
    const rows = await this.one<{ v: number | null }>('auth_schema_version', 'SELECT max(version)::integer AS v FROM auth_schema_migrations', []);
    return rows[0]!.v ?? 0;
  }

  /** This instance's pool: connections open, idle, and calls waiting for one. */
  poolState(): { total: number; idle: number; waiting: number } {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount };
  }

  /** What `grpc-auth store stats` shows: rows per table, the oldest session's start and the newest login. */
  async stats(): Promise<{ rows: Record<string, number>; oldestSessionAt: number | null; newestSessionAt: number | null; schemaVersion: number }> {
    const [rows, times, schemaVersion] = await Promise.all([
      this.rowCounts(),
      this.one<{ oldest: number | null; newest: number | null }>('auth_session_times', 'SELECT min(created_at) AS oldest, max(created_at) AS newest FROM auth_sessions', []),
      this.schemaVersion(),
    ]);
    return { rows, oldestSessionAt: times[0]!.oldest, newestSessionAt: times[0]!.newest, schemaVersion };
  }
}
