import { backoffDelay } from '../core/login-throttle.js';
import type { AttemptGrant, AttemptOutcome, BackoffPolicy, NewSession, RefreshTokenRef, RotateRequest, RotateResult, SessionRecord, Store, UserRecord } from './store.js';

/**
 * A session in memory, sized for millions of them (bench: `npm run bench`, "Memory store").
 * It holds its active refresh token, so a live session is one object and one map entry: a token
 * names its session, so the session is found by id and the token checked against `tokenHash`.
 *
 * Times are kept as whole seconds plus one number that packs the three millisecond remainders:
 * V8 boxes every number that is not a small integer in a 16-byte object of its own per field,
 * and epoch milliseconds never are small, while epoch seconds are (until 2038; after that they
 * are boxed again, and still exact). Times are integer milliseconds since the epoch.
 */
class SessionEntry {
  /** 0 while active. */
  revokedAt = 0;
  private createdSeconds: number;
  private expiresSeconds: number;
  private tokenExpiresSeconds: number;
  /** created ms + 1000 × expires ms + 1e6 × token-expires ms (each 0-999): a small integer. */
  private millis: number;

  constructor(
    readonly userId: string,
    readonly username: string,
    readonly roles: readonly string[],
    createdAt: number,
    expiresAt: number,
    /** Hash of the session's active refresh token ('' once it has expired and been swept). */
    public tokenHash: string,
    tokenExpiresAt: number,
  ) {
    this.createdSeconds = Math.floor(createdAt / 1000);
    this.expiresSeconds = Math.floor(expiresAt / 1000);
    this.tokenExpiresSeconds = Math.floor(tokenExpiresAt / 1000);
    this.millis = createdAt - this.createdSeconds * 1000 + 1000 * (expiresAt - this.expiresSeconds * 1000) + 1e6 * (tokenExpiresAt - this.tokenExpiresSeconds * 1000);
  }

  get createdAt(): number {
    return this.createdSeconds * 1000 + (this.millis % 1000);
  }

  get expiresAt(): number {
    return this.expiresSeconds * 1000 + (Math.floor(this.millis / 1000) % 1000);
  }

  get tokenExpiresAt(): number {
    return this.tokenExpiresSeconds * 1000 + Math.floor(this.millis / 1e6);
  }

  set tokenExpiresAt(at: number) {
    this.tokenExpiresSeconds = Math.floor(at / 1000);
    this.millis = (this.millis % 1e6) + 1e6 * (at - this.tokenExpiresSeconds * 1000);
  }

  record(id: string): SessionRecord {
    return { id, userId: this.userId, username: this.username, roles: this.roles, createdAt: this.createdAt, expiresAt: this.expiresAt };
  }
}

/** A rotated refresh token, kept until its own expiry for re-use detection. */
interface RotatedToken {
  readonly sessionId: string;
  readonly session: SessionEntry;
  readonly expiresAt: number;
  readonly rotatedAt: number;
  readonly successorHash: string;
  readonly sealedSuccessor: string;
}

export interface MemoryStoreOptions {
  /**
   * How long a revoked session's marker is kept (ms): long enough that every access token of it
   * has expired, i.e. at least the access-token TTL plus the clock skew.
   */
  readonly revokedRetention: number;
}

/**
 * The default store: everything in this process, nothing on disk. Each method runs to completion
 * within one turn of the event loop, which makes every operation atomic. `sweep` drops expired
 * entries so memory stays bounded; the composition root calls it on a timer.
 */
export class MemoryStore implements Store {
  private readonly users = new Map<string, UserRecord>();
  private readonly sessions = new Map<string, SessionEntry>();
  /** Rotated refresh tokens by hash; active ones live in their session. */
  private readonly rotated = new Map<string, RotatedToken>();
  private activeTokens = 0;
  private readonly attempts = new Map<string, { failures: number; inFlight: number; lastAt: number; expiresAt: number }>();

  constructor(private readonly options: MemoryStoreOptions) {}

  async createUser(user: UserRecord): Promise<'created' | 'exists'> {
    if (this.users.has(user.username)) return 'exists';
    this.users.set(user.username, user);
    return 'created';
  }

  async findUserByUsername(username: string): Promise<UserRecord | undefined> {
    return this.users.get(username);
  }

  async createSession({ session, refreshHash, refreshExpiresAt }: NewSession): Promise<void> {
    const { id, userId, username, roles, createdAt, expiresAt } = session;
    if (this.sessions.get(id)?.tokenHash) this.activeTokens--;
    this.sessions.set(id, new SessionEntry(userId, username, roles, createdAt, expiresAt, refreshHash, refreshExpiresAt));
    this.activeTokens++;
  }

  async rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    const session = this.sessions.get(req.sessionId);
    const active = session !== undefined && isActiveToken(session, req.hash);
    const rotated = session === undefined || active ? undefined : this.rotatedOf(req.hash, session);
    if (session === undefined || (!active && rotated === undefined)) return { outcome: 'invalid', why: 'unknown' };
    if (session.revokedAt !== 0) return { outcome: 'invalid', why: 'revoked' };
    const tokenExpiresAt = rotated ? rotated.expiresAt : session.tokenExpiresAt;
    if (req.now >= session.expiresAt || req.now >= tokenExpiresAt) return { outcome: 'invalid', why: 'expired' };

    if (rotated) {
      // Only a retry of the token whose successor is still the session's active one, within the interval.
      const withinInterval = req.now - rotated.rotatedAt <= req.reuseIntervalMs;
      if (withinInterval && session.tokenHash === rotated.successorHash) {
        return { outcome: 'retried', session: session.record(req.sessionId), expiresAt: session.tokenExpiresAt, sealedSuccessor: rotated.sealedSuccessor };
      }
      session.revokedAt = req.now;
      return { outcome: 'reused', sessionId: req.sessionId, userId: session.userId };
    }

    const expiresAt = Math.min(req.now + req.refreshTtlMs, session.expiresAt);
    this.rotated.set(req.hash, { sessionId: req.sessionId, session, expiresAt: tokenExpiresAt, rotatedAt: req.now, successorHash: req.successorHash, sealedSuccessor: req.sealedSuccessor });
    session.tokenHash = req.successorHash;
    session.tokenExpiresAt = expiresAt;
    return { outcome: 'rotated', session: session.record(req.sessionId), expiresAt };
  }

  async revokeSessionByRefreshToken(ref: RefreshTokenRef, now: number): Promise<{ sessionId: string; userId: string } | undefined> {
    const session = this.sessions.get(ref.sessionId);
    if (session === undefined || (!isActiveToken(session, ref.hash) && this.rotatedOf(ref.hash, session) === undefined)) return undefined;
    if (session.revokedAt === 0) session.revokedAt = now;
    return { sessionId: ref.sessionId, userId: session.userId };
  }

  async isSessionActive(sessionId: string, now: number): Promise<boolean> {
    const session = this.sessions.get(sessionId);
    return session !== undefined && session.revokedAt === 0 && now < session.expiresAt;
  }

  async beginAttempt(key: string, now: number, policy: BackoffPolicy): Promise<AttemptGrant> {
    let entry = this.attempts.get(key);
    if (entry && now >= entry.expiresAt) entry = undefined;
    const retryAt = entry ? entry.lastAt + backoffDelay(entry.failures + entry.inFlight, policy) : 0;
    if (now < retryAt) return { allowed: false, retryAt };
    this.attempts.set(key, { failures: entry?.failures ?? 0, inFlight: (entry?.inFlight ?? 0) + 1, lastAt: now, expiresAt: now + policy.windowMs });
    return { allowed: true };
  }

  async endAttempt(key: string, now: number, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void> {
    const entry = this.attempts.get(key);
    if (!entry) return;
    if (outcome === 'succeeded') {
      this.attempts.delete(key);
      return;
    }
    entry.inFlight = Math.max(0, entry.inFlight - 1);
    if (outcome === 'released') return;
    entry.failures++;
    entry.lastAt = now;
    entry.expiresAt = now + policy.windowMs;
  }

  /** The rotated token of that hash, if it belongs to `session`. */
  private rotatedOf(hash: string, session: SessionEntry): RotatedToken | undefined {
    const rotated = this.rotated.get(hash);
    return rotated !== undefined && rotated.session === session ? rotated : undefined;
  }

  async connect(): Promise<void> {}

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  /** Drops expired refresh tokens, ended sessions and revoked-session markers past retention. */
  sweep(now: number): { sessions: number; tokens: number } {
    let sessions = 0;
    let tokens = 0;
    for (const [id, entry] of this.sessions) {
      const over = now >= entry.expiresAt || (entry.revokedAt !== 0 && now >= entry.revokedAt + this.options.revokedRetention);
      if (over) {
        this.sessions.delete(id);
        sessions++;
      }
      if (entry.tokenHash !== '' && (over || now >= entry.tokenExpiresAt)) {
        entry.tokenHash = '';
        this.activeTokens--;
        tokens++;
      }
    }
    for (const [hash, rotated] of this.rotated) {
      if (now >= rotated.expiresAt || this.sessions.get(rotated.sessionId) !== rotated.session) {
        this.rotated.delete(hash);
        tokens++;
      }
    }
    for (const [key, entry] of this.attempts) if (now >= entry.expiresAt) this.attempts.delete(key);
    return { sessions, tokens };
  }

  /** Entry counts, for tests and metrics. */
  size(): { users: number; sessions: number; tokens: number } {
    return { users: this.users.size, sessions: this.sessions.size, tokens: this.activeTokens + this.rotated.size };
  }
}

/** True when `hash` is the session's active refresh token (an expired, swept one matches nothing). */
function isActiveToken(session: SessionEntry, hash: string): boolean {
  return hash !== '' && session.tokenHash === hash;
}
