import type { Clock, Random } from '../clock.js';
import { AuthError } from '../errors.js';
import type { SessionStore, UserRecord, UserStore } from '../store/store.js';
import type { AccessTokenIssuer } from './access-token.js';
import { canonicalUsername, checkLoginFields, normalizePassword, PASSWORD_MAX, REFRESH_TOKEN_FIELD_MAX } from './credentials.js';
import type { FlowContext } from './events.js';
import { newId } from './ids.js';
import { ACCOUNT_POLICY, ADDRESS_POLICY, type LoginThrottle } from './login-throttle.js';
import type { PasswordHasher } from './password-hasher.js';
import { RefreshTokenCodec } from './refresh-token.js';

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
  /** Seconds. */
  readonly refreshTtl: number;
  readonly sessionMaxAge: number;
  readonly refreshReuseInterval: number;
}

export interface SessionFlowDeps {
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly hasher: PasswordHasher;
  readonly throttle: LoginThrottle;
  readonly accessTokens: AccessTokenIssuer;
  readonly refreshTokens: RefreshTokenCodec;
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
      expiresAt: now + this.options.sessionMaxAge * 1000,
    };
    const refresh = refreshTokens.generate(session.id);
    const refreshExpiresAt = Math.min(now + this.options.refreshTtl * 1000, session.expiresAt);
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
    const presented = RefreshTokenCodec.parse(token);
    if (!presented) throw new AuthError('invalid_refresh_token', INVALID_REFRESH);
    const { clock, refreshTokens, sessions, accessTokens } = this.deps;
    const now = clock.now();
    const successor = refreshTokens.generate(presented.sessionId);
    const sealedSuccessor = refreshTokens.seal(token, successor.token);
    const result = await sessions.rotateRefreshToken({
      sessionId: presented.sessionId,
      hash: presented.hash,
      successorHash: successor.hash,
      sealedSuccessor,
      now,
      refreshTtl: this.options.refreshTtl * 1000,
      reuseInterval: this.options.refreshReuseInterval * 1000,
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
        const opened = RefreshTokenCodec.open(token, result.sealedSuccessor);
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
    const presented = RefreshTokenCodec.parse(token);
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
