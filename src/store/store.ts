/**
 * The storage interface. The core depends on nothing else; the in-memory store implements it
 * and a Redis store can follow without touching the core. Every method that decides something
 * (create a unique user, rotate a refresh token, revoke a session) is one atomic operation, so a
 * store shared by several instances behaves as one instance does.
 *
 * Times are milliseconds since the epoch and are always passed in: stores never read a clock.
 * Stores signal an outage by rejecting with `AuthError('unavailable', ...)`.
 */
export interface UserRecord {
  readonly id: string;
  /** Normalised (NFKC, lower case). */
  readonly username: string;
  /** argon2id PHC string. */
  readonly passwordHash: string;
  readonly roles: readonly string[];
  readonly createdAt: number;
}

export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  readonly username: string;
  readonly roles: readonly string[];
  readonly createdAt: number;
  /** Absolute end of the session: no refresh token of it outlives this. */
  readonly expiresAt: number;
}

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
  /** Idle lifetime of the successor (ms); capped by the session's absolute end. */
  readonly refreshTtl: number;
  /** How long after a rotation a retry of the same token gets the same successor back (ms). */
  readonly reuseInterval: number;
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

export interface UserStore {
  /** Adds the user unless the username is taken; atomic. */
  createUser(user: UserRecord): Promise<'created' | 'exists'>;
  findUserByUsername(username: string): Promise<UserRecord | undefined>;
}

export interface SessionStore {
  createSession(request: NewSession): Promise<void>;
  rotateRefreshToken(request: RotateRequest): Promise<RotateResult>;
  /** Revokes the session of any of its refresh tokens, current or rotated; unknown tokens do nothing. */
  revokeSessionByRefreshToken(token: RefreshTokenRef, now: number): Promise<{ readonly sessionId: string } | undefined>;
  /** True when the session exists, is not revoked and has not reached its absolute end. */
  isSessionActive(sessionId: string, now: number): Promise<boolean>;
}

/** Consecutive failed logins of one key (an account, a client address), for throttling. */
export interface FailureCount {
  readonly count: number;
  /** When the last failure was recorded (ms). */
  readonly lastAt: number;
}

export interface FailureStore {
  /** Adds one failure atomically; the count is forgotten `ttl` ms after the last failure. */
  recordFailure(key: string, now: number, ttl: number): Promise<FailureCount>;
  getFailures(key: string, now: number): Promise<FailureCount | undefined>;
  resetFailures(key: string): Promise<void>;
}

export interface Store extends UserStore, SessionStore, FailureStore {
  /** Opens connections, if the store has any; rejects with `unavailable` when it cannot reach its server. */
  connect(): Promise<void>;
  /** Resolves when the store can serve; rejects with `unavailable` when it cannot. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
