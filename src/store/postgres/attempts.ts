import type { AttemptGrant, AttemptGuard, AttemptOutcome, BackoffPolicy } from '../../core/login-throttle.js';
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

/** Compare-and-set tries of a login's begin before it takes the row's lock instead. */
const CAS_TRIES = 2;

/** Login-attempt counters: the shared rules over a row read and compared-and-set, or locked, for each decision. */
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

  /** The key's row as it is now (nulls when there is none), and the store's time. */
  private async readAttempt(key: string): Promise<AttemptRow & { now: number }> {
    const rows = await this.one<AttemptRow & { now: number }>(
      'auth_check_attempt',
      `SELECT a.failures, a.in_flight, a.in_flight_until, a.last_failure_at, a.expires_at, n.now FROM (SELECT ${now(2)} AS now) n LEFT JOIN auth_attempts a ON a.key = $1`,
      [key, this.fixedNow()],
    );
    return rows[0]!;
  }

  /** As readAttempt, with the guard's row (`g_` columns) read by the same statement. */
  private async readGuarded(key: string, guard: string): Promise<AttemptRow & { now: number; guard: AttemptRow }> {
    const rows = await this.one<AttemptRow & { now: number; g_failures: number; g_in_flight: number; g_in_flight_until: number; g_last_failure_at: number; g_expires_at: number | null }>(
      'auth_check_guarded_attempt',
      `SELECT a.failures, a.in_flight, a.in_flight_until, a.last_failure_at, a.expires_at, n.now,
              g.failures AS g_failures, g.in_flight AS g_in_flight, g.in_flight_until AS g_in_flight_until, g.last_failure_at AS g_last_failure_at, g.expires_at AS g_expires_at
       FROM (SELECT ${now(2)} AS now) n LEFT JOIN auth_attempts a ON a.key = $1 LEFT JOIN auth_attempts g ON g.key = $3`,
      [key, this.fixedNow(), guard],
    );
    // The key's columns as readAttempt gives them (they are compared-and-set as read), the guard's apart.
    const { g_failures, g_in_flight, g_in_flight_until, g_last_failure_at, g_expires_at, ...own } = rows[0]!;
    return { ...own, guard: { failures: g_failures, in_flight: g_in_flight, in_flight_until: g_in_flight_until, last_failure_at: g_last_failure_at, expires_at: g_expires_at } };
  }

  async checkAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    const r = await this.readAttempt(key);
    return checkRule(entryOf(r, r.now), r.now, policy);
  }

  /**
   * Two round trips where a transaction takes four (every login begins with this): the row is
   * read, the rule decides, and the decision is written only if the row is still as read, a
   * compare-and-set on every column (an absent row: an insert that a concurrent one makes fail).
   * A refusal writes nothing. A key whose row changed meanwhile (attempts of one account at once)
   * is decided again, and after `CAS_TRIES` lost races under the row's lock, where concurrent
   * attempts queue (the tries within one operation's budget, the transaction then within its own:
   * at most two where one was). Each write carries the deadline, so a late one writes nothing;
   * behind a pooler the statements have no lock timeout (see docs/postgresql.md), and a write that
   * waits for a lock past the deadline writes nothing either.
   */
  beginAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    return this.begin(key, policy, undefined);
  }

  /** The guard's row is read by the statement that reads the key's, on every try. */
  beginGuardedAttempt(key: string, policy: BackoffPolicy, guard: AttemptGuard): Promise<AttemptGrant> {
    return this.begin(key, policy, guard);
  }

  private async begin(key: string, policy: BackoffPolicy, guard: AttemptGuard | undefined): Promise<AttemptGrant> {
    const started = performance.now();
    for (let race = 0; race < CAS_TRIES; race++) {
      // The guard's row comes with the key's, in the same statement (it was a round trip of its own).
      const r: AttemptRow & { now: number; guard?: AttemptRow } = guard ? await this.readGuarded(key, guard.key) : await this.readAttempt(key);
      if (guard && r.guard) {
        const held = checkRule(entryOf(r.guard, r.now), r.now, guard.policy);
        if (!held.allowed) return held;
      }
      const { grant, next } = beginRule(entryOf(r, r.now), r.now, policy);
      if (!next) return grant;
      if (await this.swapAttempt(key, r, next)) return grant;
      // The tries keep to one budget: nothing was written, so UNAVAILABLE is safe to retry.
      if (performance.now() - started > this.budgetMs) throw this.unavailable(new Error("the counter's row changed under each compare-and-set within the budget; nothing was written"));
    }
    // The guard was asked by the last read, a round trip ago, and is not asked again under the lock.
    return this.tx(async (q) => {
      const { entry, now: t } = await this.lockedAttempt(q, key);
      const { grant, next } = beginRule(entry, t, policy);
      await PostgresAttempts.writeAttempt(q, key, next, entry);
      return grant;
    });
  }

  /** Writes `next` if the key's row is still `was` (every column), or still absent; whether it did. */
  private async swapAttempt(key: string, was: AttemptRow, next: AttemptEntry): Promise<boolean> {
    const values = [key, next.failures, next.inFlight, next.inFlightUntil, next.lastFailureAt, next.expiresAt];
    if (was.expires_at === null) {
      const rows = await this.one(
        'auth_insert_attempt',
        `INSERT INTO auth_attempts (key, failures, in_flight, in_flight_until, last_failure_at, expires_at)
         SELECT $1::text, $2::integer, $3::integer, $4::bigint, $5::bigint, $6::bigint WHERE ${onTime(7)}
         ON CONFLICT (key) DO NOTHING RETURNING ${onTime(7)}`,
        [...values, DEADLINE],
      );
      return rows.length === 1;
    }
    const rows = await this.one(
      'auth_swap_attempt',
      `UPDATE auth_attempts SET failures = $2, in_flight = $3, in_flight_until = $4, last_failure_at = $5, expires_at = $6
       WHERE key = $1 AND failures = $7 AND in_flight = $8 AND in_flight_until = $9 AND last_failure_at = $10 AND expires_at = $11 AND ${onTime(12)}
       RETURNING ${onTime(12)}`,
      [...values, was.failures, was.in_flight, was.in_flight_until, was.last_failure_at, was.expires_at, DEADLINE],
    );
    return rows.length === 1;
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
