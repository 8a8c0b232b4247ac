import DataLoader from 'dataloader';
import type { LiveUser, SessionInfo } from '../../core/records.js';
import type { ParsedRefreshToken } from '../../core/refresh-token.js';
import type { CreateSessionResult, NewSession, RotateRequest, RotateResult } from '../../core/session-flows.js';
import { sharedAmr } from '../../core/amr.js';
import { DEADLINE, LIVE_BATCH, PostgresBase } from './base.js';
import type { SessionRecord } from '../store.js';
import { ACTIVE, liveOf, now, onTime, SESSION_INFO, sessionOf, USER, type SessionRow, type UserRow } from './records.js';

/** Sessions: one row each, updated in place by every rotation; liveness checks batched per event-loop turn. */
export class PostgresSessions extends PostgresBase {
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
      const expiresAt = t + req.sessionMaxAgeMs;
      const refreshExpiresAt = Math.min(t + req.refreshTtlMs, expiresAt);
      // One statement (a round trip, not three): the user's ended sessions go, and of the rest the
      // oldest past the cap (the new one counted), and the new one is inserted. It sees the
      // database as it was once the user's row was locked above: every session of a concurrent
      // login of the user, which took that lock before, is counted.
      await q(
        'auth_start_session',
        `WITH mine AS (
           SELECT id, seq, ($5 < expires_at AND $5 < token_expires_at + $12 AND user_generation >= $3) AS live FROM auth_sessions WHERE user_id = $2
         ), ended AS (
           DELETE FROM auth_sessions WHERE id IN (
             (SELECT id FROM mine WHERE NOT live) UNION ALL (SELECT id FROM mine WHERE live ORDER BY seq DESC OFFSET $13)
           )
         )
         INSERT INTO auth_sessions (id, user_id, user_generation, generation, token_hash, created_at, last_refreshed_at, expires_at, token_expires_at, purge_at, client_address, user_agent, amr)
         VALUES ($1, $2, $3, 0, $4, $5, $5, $6, $7, $8, $9, $10, $11)`,
        [
          req.sessionId,
          req.userId,
          user.generation,
          req.refreshHash,
          t,
          expiresAt,
          refreshExpiresAt,
          Math.min(expiresAt, refreshExpiresAt + this.grace),
          req.clientAddress,
          req.userAgent,
          req.amr.join(' '),
          this.grace,
          this.options.maxSessionsPerUser - 1,
        ],
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
           AND n.now < s.token_expires_at AND ${ACTIVE('$8')} AND ${onTime(10)}
         RETURNING n.now, s.expires_at, s.token_expires_at, s.created_at, s.amr, u.id, u.username, u.roles, u.revision, ${onTime(10)}`,
        [req.userId, req.sessionId, req.generation, req.hash, req.successorHash, req.sealedSuccessor, req.refreshTtlMs, this.grace, this.fixedNow(), DEADLINE],
      );
      const r = rotated[0];
      if (r) return { outcome: 'rotated', user: liveOf(r), now: r.now, expiresAt: r.expires_at, refreshExpiresAt: r.token_expires_at, authTime: r.created_at, amr: sharedAmr(r.amr) };
      const found = await this.classify(req);
      if (found !== 'again') return found;
    }
    return { outcome: 'invalid', why: 'unknown' };
  }

  /** Why a rotation did not happen, from the session as it is now; 'again' when it now would. */
  protected async classify(req: RotateRequest): Promise<RotateResult | 'again'> {
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
    this.liveLoader ??= new DataLoader<{ userId: string; sessionId: string }, LiveUser | undefined, string>(
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
    return this.liveLoader.load({ userId, sessionId });
  }

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

  async exportSessions(userId: string): Promise<SessionRecord[]> {
    const rows = await this.one<SessionRow>(
      'auth_export_sessions',
      `SELECT s.id, s.user_generation, s.generation, s.token_hash, s.previous_hash, s.previous_rotated_at, s.previous_sealed, s.created_at, s.last_refreshed_at,
              s.expires_at, s.token_expires_at, s.client_address, s.user_agent, s.amr
       FROM auth_sessions s JOIN auth_users u ON u.id = s.user_id, (SELECT ${now(3)} AS now) n
       WHERE s.user_id = $1 AND ${ACTIVE('$2')} ORDER BY s.seq`,
      [userId, this.grace, this.fixedNow()],
    );
    return rows.map((r) => sessionOf(userId, r));
  }

  async revokeSession(userId: string, sessionId: string): Promise<boolean> {
    const rows = await this.one(
      'auth_revoke_session',
      `DELETE FROM auth_sessions s USING auth_users u, (SELECT ${now(4)} AS now) n
       WHERE s.id = $2 AND s.user_id = $1 AND u.id = s.user_id AND ${ACTIVE('$3')} AND ${onTime(5)}
       RETURNING s.id, ${onTime(5)}`,
      [userId, sessionId, this.grace, this.fixedNow(), DEADLINE],
    );
    return rows.length === 1;
  }
}
