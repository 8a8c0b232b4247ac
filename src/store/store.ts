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
  revokeSessionByRefreshToken(token: RefreshTokenRef, now: number): Promise<{ readonly sessionId: string; readonly userId: string } | undefined>;
  /** True when the session exists, is not revoked and has not reached its absolute end. */
  isSessionActive(sessionId: string, now: number): Promise<boolean>;
}

/** How failed logins slow further attempts down, per key (an account, a client address). */
export interface BackoffPolicy {
  /** Failures allowed before any wait. */
  readonly freeFailures: number;
  /** Wait after the first counted failure; doubles with each further one. */
  readonly baseDelayMs: number;
  /** The wait never grows past this, so a real user is never kept out long. */
  readonly maxDelayMs: number;
  /** NIST SP 800-63B section 5.2.2: at most this many consecutive failures; past it, no attempts until the count expires. */
  readonly maxFailures: number;
  /** A count is forgotten this long after its last attempt. */
  readonly windowMs: number;
}

/** Milliseconds after the last attempt before another one is allowed, given the failures so far. */
export function backoffDelay(failures: number, policy: BackoffPolicy): number {
  if (failures >= policy.maxFailures) return policy.windowMs;
  if (failures < policy.freeFailures) return 0;
  return Math.min(policy.baseDelayMs * 2 ** Math.min(failures - policy.freeFailures, 30), policy.maxDelayMs);
}

export type AttemptOutcome = 'failed' | 'succeeded' | 'released';

export type AttemptGrant = { readonly allowed: true } | { readonly allowed: false; readonly retryAt: number };

/**
 * Login attempts per key, reserved atomically so that a burst of parallel guesses is throttled
 * like a sequence: attempts in flight count as failures until they end.
 */
export interface AttemptStore {
  /**
   * Allows the attempt when `now` is past the back-off of (failures + attempts in flight) since
   * the last attempt, and then records it as in flight; otherwise changes nothing.
   */
  beginAttempt(key: string, now: number, policy: BackoffPolicy): Promise<AttemptGrant>;
  /** Ends an allowed attempt: a failure is counted, a success clears the key, a release only ends it. */
  endAttempt(key: string, now: number, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void>;
}

export interface Store extends UserStore, SessionStore, AttemptStore {
  /** Opens connections, if the store has any; rejects with `unavailable` when it cannot reach its server. */
  connect(): Promise<void>;
  /** Resolves when the store can serve; rejects with `unavailable` when it cannot. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
