import { AuthError } from '../errors.js';
import type { Random } from '../random.js';
import type { AccessTokenIssuer } from './access-token.js';
import { canonicalUsername, checkLoginFields, normalizePassword, PASSWORD_MAX, REFRESH_TOKEN_FIELD_MAX } from './credentials.js';
import type { FlowContext } from './events.js';
import { newId } from './ids.js';
import type { LoginThrottle } from './login-throttle.js';
import type { PasswordHasher } from './password-hasher.js';
import { grantedRoles } from './introspector.js';
import { AMR_PASSWORD, AMR_PASSWORD_OTP } from './amr.js';
import type { SecondFactors } from './mfa.js';
import type { LiveUser, UserRecord } from './records.js';
import type { ParsedRefreshToken, RefreshTokenStrategy } from './refresh-token.js';

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

/** What Login returns: a session, or (a user with a second factor) a challenge for CompleteLogin. */
export type LoginResult =
  | ({ readonly mfaRequired: false; readonly mfaEnrollmentRequired: boolean } & TokenPair)
  | { readonly mfaRequired: true; readonly mfaToken: string; readonly mfaExpiresIn: number };

/** What CompleteLogin returns. */
export type CompletedLogin = TokenPair & { readonly usedRecoveryCode: boolean; readonly recoveryCodesLeft: number };

export interface NewSession {
  readonly userId: string;
  readonly sessionId: string;
  /** The user's generation when the password checked out: a revoke-all since then refuses the session. */
  readonly userGeneration: number;
  /** Hash of the session's first refresh token (generation 0). */
  readonly refreshHash: string;
  readonly refreshTtlMs: number;
  readonly sessionMaxAgeMs: number;
  /** Seen at login, shown by ListSessions. */
  readonly clientAddress: string;
  readonly userAgent: string;
  /** How the user authenticated (RFC 8176): kept for the session's life, carried by every token of it. */
  readonly amr: readonly string[];
}

/** Times a store reports, on its own clock (the one clock every instance shares). */
export interface SessionTimes {
  readonly now: number;
  /** Absolute end of the session. */
  readonly expiresAt: number;
  /** When the current refresh token expires unless used. */
  readonly refreshExpiresAt: number;
  /** When the session began (the login: the tokens' auth_time). */
  readonly authTime: number;
  /** The session's authentication methods, as created. */
  readonly amr: readonly string[];
}

export type CreateSessionResult =
  | ({ readonly outcome: 'created'; readonly user: LiveUser } & SessionTimes)
  | { readonly outcome: 'refused'; readonly why: 'user_gone' | 'disabled' | 'revoked' };

export interface RotateRequest {
  readonly userId: string;
  readonly sessionId: string;
  /** The presented token's generation and hash. */
  readonly generation: number;
  readonly hash: string;
  /** Whether its tag verified: only a tagged token can prove re-use. */
  readonly tagged: boolean;
  /** Hash of its would-be successor (generation + 1), and the successor sealed under the presented token. */
  readonly successorHash: string;
  readonly sealedSuccessor: string;
  /** Idle lifetime of the successor; capped by the session's absolute end. */
  readonly refreshTtlMs: number;
  /** How long after a rotation a retry of the same token gets the same successor back. */
  readonly reuseIntervalMs: number;
}

/**
 * What one atomic rotation found:
 * - `rotated`: the token was the current one; its successor is current now.
 * - `retried`: the token is the previous one, rotated within the reuse interval; nothing changed,
 *   the sealed successor is returned.
 * - `reused`: the token is of an older generation, or the previous one past the interval: the
 *   store has revoked the whole session (RFC 6819 section 5.2.2.3).
 * - `invalid`: unknown, expired, or its session or user is revoked, disabled or gone; nothing changed.
 * Rotated and retried carry the user as they are now: the new access token has today's roles.
 */
export type RotateResult =
  | ({ readonly outcome: 'rotated'; readonly user: LiveUser } & SessionTimes)
  | ({ readonly outcome: 'retried'; readonly user: LiveUser; readonly sealedSuccessor: string } & SessionTimes)
  | { readonly outcome: 'reused'; readonly sessionId: string; readonly userId: string }
  | { readonly outcome: 'invalid'; readonly why: 'unknown' | 'expired' | 'revoked' };

/**
 * The sessions port (fosite's `RefreshTokenStorage`): every method that decides something is one
 * atomic operation, so a store shared by several instances behaves as one instance does.
 */
export interface SessionStore {
  findUserByUsername(username: string): Promise<UserRecord | undefined>;
  createSession(request: NewSession): Promise<CreateSessionResult>;
  rotateRefreshToken(request: RotateRequest): Promise<RotateResult>;
  /** Revokes the session of any token it issued (current, or older when tagged); unknown tokens do nothing. */
  revokeSessionByRefreshToken(token: ParsedRefreshToken): Promise<{ readonly sessionId: string; readonly userId: string } | undefined>;
}

export interface SessionFlowOptions {
  readonly refreshTtlMs: number;
  readonly sessionMaxAgeMs: number;
  readonly refreshReuseIntervalMs: number;
}

export interface SessionFlowDeps {
  readonly sessions: SessionStore;
  readonly hasher: PasswordHasher;
  readonly throttle: LoginThrottle;
  readonly accessTokens: AccessTokenIssuer;
  readonly refreshTokens: RefreshTokenStrategy;
  readonly random: Random;
  /** Second factors: without them every Login starts a session with the password alone. */
  readonly secondFactors?: SecondFactors | undefined;
}

const INVALID_CREDENTIALS = 'invalid username or password';
const INVALID_REFRESH = 'refresh token is invalid, expired or revoked';
export const ACCOUNT_DISABLED = 'account disabled';

/** Login, Refresh and Logout: sessions and their token pairs. */
export class SessionFlows {
  constructor(
    private readonly deps: SessionFlowDeps,
    private readonly options: SessionFlowOptions,
  ) {}

  /**
   * Checks a password and starts a session. One error for unknown user and wrong password alike;
   * a disabled account is said so only once its password has checked out. Failures are counted
   * per account and per client address, and attempts that come before the back-off has passed
   * are refused before any hashing.
   */
  async login(rawUsername: string, rawPassword: string, ctx: FlowContext): Promise<LoginResult> {
    checkLoginFields(rawUsername, rawPassword);
    const user = await this.checkPassword(rawUsername, rawPassword, ctx);
    ctx.log.info({ event: 'login_succeeded', userId: user.id }, 'login succeeded');
    const gate = this.deps.secondFactors ? await this.deps.secondFactors.gate(user, ctx) : { kind: 'session' as const, enrollmentRequired: false };
    if (gate.kind === 'challenge') return { mfaRequired: true, mfaToken: gate.mfaToken, mfaExpiresIn: gate.expiresIn };
    if (gate.enrollmentRequired) ctx.log.warn({ event: 'mfa_enrollment_required', userId: user.id }, 'roles withheld until the user enrolls a second factor');
    return { mfaRequired: false, mfaEnrollmentRequired: gate.enrollmentRequired, ...(await this.startSession(user, AMR_PASSWORD, ctx)) };
  }

  /** CompleteLogin: the second factor of a Login that answered mfa_required starts the session. */
  async completeLogin(mfaToken: string, code: string, ctx: FlowContext): Promise<CompletedLogin> {
    if (!this.deps.secondFactors) throw new AuthError('failed_precondition', 'second factors are not enabled on this server');
    const passed = await this.deps.secondFactors.completeLogin(mfaToken, code, ctx);
    const pair = await this.startSession(passed.user, AMR_PASSWORD_OTP, ctx);
    return { ...pair, usedRecoveryCode: passed.usedRecoveryCode, recoveryCodesLeft: passed.recoveryCodesLeft };
  }

  /**
   * The password check of Login (and of ChangePassword): throttled, one answer for unknown users
   * and wrong passwords, `account_disabled` only after the password matched. Returns the user.
   */
  async checkPassword(rawUsername: string, rawPassword: string, ctx: FlowContext): Promise<UserRecord> {
    const { sessions, hasher, throttle } = this.deps;
    const username = canonicalUsername(rawUsername);
    // Unknown and impossible usernames are counted like real ones, under their normalised form.
    const attempt = await throttle.begin(username ?? rawUsername.normalize('NFKC').toLowerCase(), ctx);
    try {
      const password = normalizePassword(rawPassword);
      const user = username === undefined ? undefined : await sessions.findUserByUsername(username);
      // Unknown users and passwords no account can have cost one hash too, so timing tells nothing.
      const tooLong = [...password].length > PASSWORD_MAX;
      const ok = user !== undefined && !tooLong ? await hasher.verify(user.passwordHash, password) : (await hasher.verifyDummy(password), false);
      if (!user || !ok) {
        await attempt.failed();
        ctx.log.info({ event: 'login_failed', ...(user ? { userId: user.id } : {}) }, 'login failed');
        throw new AuthError('invalid_credentials', INVALID_CREDENTIALS);
      }
      await attempt.succeeded();
      if (user.disabled) {
        ctx.log.info({ event: 'login_refused_disabled', userId: user.id }, 'login refused: account disabled');
        throw new AuthError('account_disabled', ACCOUNT_DISABLED);
      }
      return user;
    } finally {
      // Any other failure (store, overload, deadline) ends the attempt uncounted.
      await attempt.release().catch(() => {});
    }
  }

  private roles(roles: readonly string[], amr: readonly string[]): readonly string[] {
    return grantedRoles(roles, amr, this.deps.secondFactors?.mfaRoles ?? []).granted;
  }

  /** A session for a user another flow authenticated (a passkey sign-in), carrying its `amr`. */
  startAuthenticated(user: Pick<UserRecord, 'id' | 'generation'>, amr: readonly string[], ctx: FlowContext): Promise<TokenPair> {
    return this.startSession(user, amr, ctx);
  }

  private async startSession(user: Pick<UserRecord, 'id' | 'generation'>, amr: readonly string[], ctx: FlowContext): Promise<TokenPair> {
    const { random, refreshTokens, sessions, accessTokens } = this.deps;
    const sessionId = newId(random, 'ses');
    const refresh = refreshTokens.generate(user.id, sessionId, 0);
    const created = await sessions.createSession({
      userId: user.id,
      sessionId,
      userGeneration: user.generation,
      refreshHash: refresh.hash,
      refreshTtlMs: this.options.refreshTtlMs,
      sessionMaxAgeMs: this.options.sessionMaxAgeMs,
      clientAddress: ctx.clientAddress ?? 'unknown',
      userAgent: ctx.userAgent ?? '',
      amr,
    });
    if (created.outcome === 'refused') {
      // Disabled, deleted or signed out everywhere while the password was being checked.
      if (created.why === 'disabled') throw new AuthError('account_disabled', ACCOUNT_DISABLED);
      throw new AuthError('invalid_credentials', INVALID_CREDENTIALS);
    }
    const access = accessTokens.issue(
      { userId: user.id, username: created.user.username, roles: this.roles(created.user.roles, created.amr), sessionId, amr: created.amr, authTime: created.authTime },
      created.expiresAt,
    );
    ctx.log.info({ event: 'session_created', userId: user.id, sessionId }, 'session created');
    return pair(access.token, access.expiresIn, refresh.token, created.refreshExpiresAt, created.now);
  }

  /**
   * Rotates a refresh token (one atomic store operation). A retry of the just-rotated token
   * within the reuse interval gets the same successor back (supabase's reuse interval); any
   * other re-use revokes the session (RFC 6819 section 5.2.2.3, fosite handleRefreshTokenReuse).
   */
  async refresh(token: string, ctx: FlowContext): Promise<TokenPair> {
    checkRefreshField(token);
    const { refreshTokens, sessions, accessTokens } = this.deps;
    const presented = refreshTokens.parse(token);
    if (!presented) {
      ctx.log.info({ event: 'refresh_failed', why: 'unknown' }, 'refresh failed');
      throw new AuthError('invalid_refresh_token', INVALID_REFRESH);
    }
    const successor = refreshTokens.generate(presented.userId, presented.sessionId, presented.generation + 1);
    const result = await sessions.rotateRefreshToken({
      userId: presented.userId,
      sessionId: presented.sessionId,
      generation: presented.generation,
      hash: presented.hash,
      tagged: presented.tagged,
      successorHash: successor.hash,
      sealedSuccessor: refreshTokens.seal(token, successor.token),
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
        ctx.log.info({ event: 'refresh_retried', userId: presented.userId, sessionId: presented.sessionId }, 'refresh retried within the reuse interval');
        break;
      }
      case 'rotated':
        next = successor.token;
        ctx.log.info({ event: 'session_refreshed', userId: presented.userId, sessionId: presented.sessionId }, 'refresh token rotated');
        break;
    }
    const access = accessTokens.issue(
      { userId: presented.userId, username: result.user.username, roles: this.roles(result.user.roles, result.amr), sessionId: presented.sessionId, amr: result.amr, authTime: result.authTime },
      result.expiresAt,
    );
    return pair(access.token, access.expiresIn, next, result.refreshExpiresAt, result.now);
  }

  /** Ends the session of a refresh token; idempotent, silent for unknown tokens (RFC 7009 section 2.2). */
  async logout(token: string, ctx: FlowContext): Promise<void> {
    checkRefreshField(token);
    const presented = this.deps.refreshTokens.parse(token);
    if (!presented) return;
    const revoked = await this.deps.sessions.revokeSessionByRefreshToken(presented);
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
