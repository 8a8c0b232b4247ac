import type { Clock } from '../clock.js';
import { AuthError } from '../errors.js';
import type { Random } from '../random.js';
import type { AccessTokenIssuer } from './access-token.js';
import { canonicalUsername, checkLoginFields, normalizePassword, PASSWORD_MAX, REFRESH_TOKEN_FIELD_MAX } from './credentials.js';
import type { FlowContext } from './events.js';
import { newId } from './ids.js';
import { ACCOUNT_POLICY, ADDRESS_POLICY, type LoginThrottle } from './login-throttle.js';
import type { PasswordHasher } from './password-hasher.js';
import type { SessionRecord, UserRecord } from './records.js';
import type { RefreshTokenStrategy } from './refresh-token.js';
import type { UserStore } from './register.js';

export interface NewSession {
  readonly session: SessionRecord;
  /** Hash of the session's first refresh token. */
  readonly refreshHash: string;
  /** When the first refresh token expires (at most `session.expiresAt`). */
  readonly refreshExpiresAt: number;
}

/** A refresh token as the store knows it: the session it names and its SHA-256. */
export interface RefreshTokenRef {
  /** The session the token names (a routing key: a store must still check the token belongs to it). */
  readonly sessionId: string;
  readonly hash: string;
}

export interface RotateRequest extends RefreshTokenRef {
  /** Hash of its would-be successor, and the successor sealed under the presented token. */
  readonly successorHash: string;
  readonly sealedSuccessor: string;
  readonly now: number;
  /** Idle lifetime of the successor; capped by the session's absolute end. */
  readonly refreshTtlMs: number;
  /** How long after a rotation a retry of the same token gets the same successor back. */
  readonly reuseIntervalMs: number;
}

/**
 * What one atomic rotation found:
 * - `rotated`: the token was active; it is now rotated and the successor is active.
 * - `retried`: the token was rotated within the reuse interval and its successor is still the
 *   session's active token; nothing changed, the sealed successor is returned.
 * - `reused`: the token was rotated before (an older generation, or past the interval): the
 *   store has revoked the whole session (RFC 6819 section 5.2.2.3).
 * - `invalid`: unknown, expired, or its session is revoked or over; nothing changed.
 */
export type RotateResult =
  | { readonly outcome: 'rotated'; readonly session: SessionRecord; readonly expiresAt: number }
  | { readonly outcome: 'retried'; readonly session: SessionRecord; readonly expiresAt: number; readonly sealedSuccessor: string }
  | { readonly outcome: 'reused'; readonly sessionId: string; readonly userId: string }
  | { readonly outcome: 'invalid'; readonly why: 'unknown' | 'expired' | 'revoked' };

/**
 * The sessions port (fosite's `RefreshTokenStorage`): every method that decides something is
 * one atomic operation, so a store shared by several instances behaves as one instance does.
 */
export interface SessionStore {
  createSession(request: NewSession): Promise<void>;
  rotateRefreshToken(request: RotateRequest): Promise<RotateResult>;
  /** Revokes the session of any of its refresh tokens, current or rotated; unknown tokens do nothing. */
  revokeSessionByRefreshToken(token: RefreshTokenRef, now: number): Promise<{ readonly sessionId: string; readonly userId: string } | undefined>;
}

/** What Login and Refresh return. */
export interface TokenPair {
  readonly accessToken: string;
  readonly tokenType: 'Bearer';
  /** Seconds. */
  readonly expiresIn: number;
  readonly refreshToken: string;
  /** Seconds. */
  readonly refreshExpiresIn: number;
}

export interface SessionFlowOptions {
  readonly refreshTtlMs: number;
  readonly sessionMaxAgeMs: number;
  readonly refreshReuseIntervalMs: number;
}

export interface SessionFlowDeps {
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly hasher: PasswordHasher;
  readonly throttle: LoginThrottle;
  readonly accessTokens: AccessTokenIssuer;
  readonly refreshTokens: RefreshTokenStrategy;
  readonly clock: Clock;
  readonly random: Random;
}

const INVALID_CREDENTIALS = 'invalid username or password';
const INVALID_REFRESH = 'refresh token is invalid, expired or revoked';

/** Login, Refresh and Logout: sessions and their token pairs. */
export class SessionFlows {
  constructor(
    private readonly deps: SessionFlowDeps,
    private readonly options: SessionFlowOptions,
  ) {}

  /**
   * Checks a password and starts a session. One error for unknown user and wrong password alike;
   * failures are counted per account and per client address, and attempts that come before the
   * back-off has passed are refused before any hashing.
   */
  async login(rawUsername: string, rawPassword: string, ctx: FlowContext): Promise<TokenPair> {
    checkLoginFields(rawUsername, rawPassword);
    const { users, hasher, throttle } = this.deps;
    const username = canonicalUsername(rawUsername);
    // Unknown and impossible usernames are counted like real ones, under their normalised form.
    const accountKey = `acct:${username ?? rawUsername.normalize('NFKC').toLowerCase()}`;
    const keys = [{ key: accountKey, policy: ACCOUNT_POLICY }];
    if (ctx.clientAddress !== undefined && ctx.clientAddress !== 'unknown') keys.push({ key: `addr:${ctx.clientAddress}`, policy: ADDRESS_POLICY });
    let attempt;
    try {
      attempt = await throttle.begin(keys);
    } catch (err) {
      if (err instanceof AuthError && err.code === 'throttled') ctx.log.warn({ event: 'login_throttled' }, 'login throttled');
      throw err;
    }
    try {
      const password = normalizePassword(rawPassword);
      const user = username === undefined ? undefined : await users.findUserByUsername(username);
      // Unknown users and passwords no account can have cost one hash too, so timing tells nothing.
      const tooLong = [...password].length > PASSWORD_MAX;
      const ok = user !== undefined && !tooLong ? await hasher.verify(user.passwordHash, password) : (await hasher.verifyDummy(password), false);
      if (!user || !ok) {
        await attempt.failed();
        ctx.log.info({ event: 'login_failed', ...(user ? { userId: user.id } : {}) }, 'login failed');
        throw new AuthError('invalid_credentials', INVALID_CREDENTIALS);
      }
      await attempt.succeeded(accountKey);
      ctx.log.info({ event: 'login_succeeded', userId: user.id }, 'login succeeded');
      return await this.startSession(user, ctx);
    } finally {
      // Any other failure (store, overload, deadline) ends the attempt uncounted.
      await attempt.release().catch(() => {});
    }
  }

  private async startSession(user: UserRecord, ctx: FlowContext): Promise<TokenPair> {
    const { clock, random, refreshTokens, sessions, accessTokens } = this.deps;
    const now = clock.now();
    const session = {
      id: newId(random, 'ses'),
      userId: user.id,
      username: user.username,
      roles: user.roles,
      createdAt: now,
      expiresAt: now + this.options.sessionMaxAgeMs,
    };
    const refresh = refreshTokens.generate(session.id);
    const refreshExpiresAt = Math.min(now + this.options.refreshTtlMs, session.expiresAt);
    await sessions.createSession({ session, refreshHash: refresh.hash, refreshExpiresAt });
    const access = accessTokens.issue({ userId: user.id, username: user.username, roles: user.roles, sessionId: session.id }, session.expiresAt);
    ctx.log.info({ event: 'session_created', userId: user.id, sessionId: session.id }, 'session created');
    return pair(access.token, access.expiresIn, refresh.token, refreshExpiresAt, now);
  }

  /**
   * Rotates a refresh token (one atomic store operation). A retry of the just-rotated token
   * within the reuse interval gets the same successor back (supabase's reuse interval); any
   * other re-use revokes the session (RFC 6819 section 5.2.2.3, fosite handleRefreshTokenReuse).
   */
  async refresh(token: string, ctx: FlowContext): Promise<TokenPair> {
    checkRefreshField(token);
    const { clock, refreshTokens, sessions, accessTokens } = this.deps;
    const presented = refreshTokens.parse(token);
    if (!presented) throw new AuthError('invalid_refresh_token', INVALID_REFRESH);
    const now = clock.now();
    const successor = refreshTokens.generate(presented.sessionId);
    const sealedSuccessor = refreshTokens.seal(token, successor.token);
    const result = await sessions.rotateRefreshToken({
      sessionId: presented.sessionId,
      hash: presented.hash,
      successorHash: successor.hash,
      sealedSuccessor,
      now,
      refreshTtlMs: this.options.refreshTtlMs,
      reuseIntervalMs: this.options.refreshReuseIntervalMs,
    });

    let next: string;
    switch (result.outcome) {
      case 'invalid':
        ctx.log.info({ event: 'refresh_failed', why: result.why }, 'refresh failed');
        throw new AuthError('invalid_refresh_token', INVALID_REFRESH);
      case 'reused':
        ctx.log.warn({ event: 'refresh_token_reused', userId: result.userId, sessionId: result.sessionId }, 'refresh token re-used');
        ctx.log.warn({ event: 'session_revoked', userId: result.userId, sessionId: result.sessionId, reason: 'refresh_token_reuse' }, 'session revoked');
        throw new AuthError('invalid_refresh_token', INVALID_REFRESH);
      case 'retried': {
        const opened = refreshTokens.open(token, result.sealedSuccessor);
        if (opened === undefined) throw new AuthError('internal', 'internal error');
        next = opened;
        ctx.log.info({ event: 'refresh_retried', userId: result.session.userId, sessionId: result.session.id }, 'refresh retried within the reuse interval');
        break;
      }
      case 'rotated':
        next = successor.token;
        ctx.log.info({ event: 'session_refreshed', userId: result.session.userId, sessionId: result.session.id }, 'refresh token rotated');
        break;
    }
    const s = result.session;
    const access = accessTokens.issue({ userId: s.userId, username: s.username, roles: s.roles, sessionId: s.id }, s.expiresAt);
    return pair(access.token, access.expiresIn, next, result.expiresAt, now);
  }

  /** Ends the session of a refresh token; idempotent, silent for unknown tokens (RFC 7009 section 2.2). */
  async logout(token: string, ctx: FlowContext): Promise<void> {
    checkRefreshField(token);
    const presented = this.deps.refreshTokens.parse(token);
    if (!presented) return;
    const revoked = await this.deps.sessions.revokeSessionByRefreshToken(presented, this.deps.clock.now());
    if (revoked) ctx.log.info({ event: 'logout', userId: revoked.userId, sessionId: revoked.sessionId }, 'session logged out');
  }
}

function checkRefreshField(token: string): void {
  if (token.length === 0) throw new AuthError('invalid_argument', 'refresh_token is required');
  if (token.length > REFRESH_TOKEN_FIELD_MAX) throw new AuthError('invalid_argument', `refresh_token must be at most ${REFRESH_TOKEN_FIELD_MAX} characters`);
}

function pair(accessToken: string, expiresIn: number, refreshToken: string, refreshExpiresAt: number, now: number): TokenPair {
  return {
    accessToken,
    tokenType: 'Bearer',
    expiresIn,
    refreshToken,
    refreshExpiresIn: Math.max(0, Math.floor((refreshExpiresAt - now) / 1000)),
  };
}
