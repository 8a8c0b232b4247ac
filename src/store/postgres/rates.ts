import { PostgresBase } from './base.js';
import { now } from './records.js';

/** Fixed-window rate counters (registrations, reset requests): an upsert that locks its row. */
export class PostgresRates extends PostgresBase {
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
}
