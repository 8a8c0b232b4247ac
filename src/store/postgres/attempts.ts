import type { AttemptGrant, AttemptOutcome, BackoffPolicy } from '../../core/login-throttle.js';
import { beginRule, checkRule, endClears, endRule, recordRule, type AttemptEntry } from '../attempt-rules.js';
import { DEADLINE, PostgresBase, type Query } from './base.js';
import { now, onTime } from './records.js';

interface AttemptRow {
  failures: number;
  in_flight: number;
  in_flight_until: number;
  last_failure_at: number;
  expires_at: number | null;
}

/** A row as the shared rules' entry: none when absent (a placeholder) or expired. */
const entryOf = (r: AttemptRow, now: number): AttemptEntry | undefined =>
  r.expires_at !== null && now < r.expires_at ? { failures: r.failures, inFlight: r.in_flight, inFlightUntil: r.in_flight_until, lastFailureAt: r.last_failure_at, expiresAt: r.expires_at } : undefined;

/** Login-attempt counters: the shared rules over a row locked for each decision. */
export class PostgresAttempts extends PostgresBase {
  /**
   * One key's entry locked for the transaction: the upsert takes the row's lock whether it was
   * there or not (a placeholder that counts as absent), so concurrent attempts on a key queue.
   */
  protected async lockedAttempt(q: Query, key: string): Promise<{ entry: AttemptEntry | undefined; now: number }> {
    const rows = await q<AttemptRow & { now: number }>(
      'auth_lock_attempt',
      `INSERT INTO auth_attempts AS a (key, failures, in_flight, last_failure_at, expires_at) VALUES ($1, 0, 0, 0, 0)
       ON CONFLICT (key) DO UPDATE SET key = a.key
       RETURNING failures, in_flight, in_flight_until, last_failure_at, expires_at, ${now(2)} AS now`,
      [key, this.fixedNow()],
    );
    const r = rows[0]!;
    return { entry: entryOf(r, r.now), now: r.now };
  }

  protected static async writeAttempt(q: Query, key: string, next: AttemptEntry | null | undefined, was: AttemptEntry | undefined): Promise<void> {
    if (next === null || (next === undefined && was === undefined)) {
      await q('auth_delete_attempt', 'DELETE FROM auth_attempts WHERE key = $1', [key]);
    } else if (next) {
      await q('auth_write_attempt', 'UPDATE auth_attempts SET failures = $2, in_flight = $3, last_failure_at = $4, expires_at = $5, in_flight_until = $6 WHERE key = $1', [
        key,
        next.failures,
        next.inFlight,
        next.lastFailureAt,
        next.expiresAt,
        next.inFlightUntil,
      ]);
    }
  }

  async checkAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    const rows = await this.one<AttemptRow & { now: number }>(
      'auth_check_attempt',
      `SELECT a.failures, a.in_flight, a.in_flight_until, a.last_failure_at, a.expires_at, n.now FROM (SELECT ${now(2)} AS now) n LEFT JOIN auth_attempts a ON a.key = $1`,
      [key, this.fixedNow()],
    );
    const r = rows[0]!;
    return checkRule(entryOf(r, r.now), r.now, policy);
  }

  async beginAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    return this.tx(async (q) => {
      const { entry, now: t } = await this.lockedAttempt(q, key);
      const { grant, next } = beginRule(entry, t, policy);
      await PostgresAttempts.writeAttempt(q, key, next, entry);
      return grant;
    });
  }

  async endAttempt(key: string, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void> {
    // A success deletes the entry whatever it holds: one statement (its row lock orders it), where
    // reading the entry first would take a transaction of four round trips (every login's end).
    if (endClears(outcome)) {
      await this.one('auth_clear_attempt', `DELETE FROM auth_attempts WHERE key = $1 AND ${onTime(2)} RETURNING ${onTime(2)}`, [key, DEADLINE]);
      return;
    }
    await this.tx(async (q) => {
      const { entry, now: t } = await this.lockedAttempt(q, key);
      await PostgresAttempts.writeAttempt(q, key, endRule(entry, t, policy, outcome), entry);
    });
  }

  async recordFailure(key: string, policy: BackoffPolicy): Promise<void> {
    await this.tx(async (q) => {
      const { entry, now: t } = await this.lockedAttempt(q, key);
      await PostgresAttempts.writeAttempt(q, key, recordRule(entry, t, policy), entry);
    });
  }

  async resetAttempts(key: string): Promise<void> {
    await this.one('auth_delete_attempt', 'DELETE FROM auth_attempts WHERE key = $1', [key]);
  }
}
