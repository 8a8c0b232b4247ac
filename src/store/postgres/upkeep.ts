import { PostgresBase, SWEEP_BATCH, SWEEP_BATCHES } from './base.js';
import { now } from './records.js';

/** Upkeep: the sweeper that deletes what can no longer be valid, and row counts for tests. */
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
        const count = await this.changed(`auth_sweep_${name}`, `DELETE FROM ${table} WHERE ${where}`, [this.fixedNow()]);
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
              (SELECT count(*) FROM auth_attempts)::int AS attempts, (SELECT count(*) FROM auth_rate_windows)::int AS rates`,
      [],
    );
    return rows[0]!;
  }
}
