import { backoffDelay, type AttemptGrant, type AttemptOutcome, type BackoffPolicy, type NewSession, type RefreshTokenRef, type RotateRequest, type RotateResult, type SessionRecord, type Store, type UserRecord } from './store.js';

interface SessionEntry {
  readonly record: SessionRecord;
  /** 0 while active. */
  revokedAt: number;
}

interface TokenEntry {
  readonly sessionId: string;
  readonly expiresAt: number;
  /** 0 while active; otherwise when it was rotated. */
  rotatedAt: number;
  successorHash: string | undefined;
  sealedSuccessor: string | undefined;
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
  private readonly tokens = new Map<string, TokenEntry>();
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
    this.sessions.set(session.id, { record: session, revokedAt: 0 });
    this.tokens.set(refreshHash, newToken(session.id, refreshExpiresAt));
  }

  async rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    const token = this.tokenOf(req);
    const session = token && this.sessions.get(token.sessionId);
    if (!token || !session) return { outcome: 'invalid', why: 'unknown' };
    if (session.revokedAt !== 0) return { outcome: 'invalid', why: 'revoked' };
    if (req.now >= session.record.expiresAt || req.now >= token.expiresAt) return { outcome: 'invalid', why: 'expired' };

    if (token.rotatedAt !== 0) {
      const successor = token.successorHash === undefined ? undefined : this.tokens.get(token.successorHash);
      const withinInterval = req.now - token.rotatedAt <= req.reuseInterval;
      if (withinInterval && successor && successor.rotatedAt === 0 && token.sealedSuccessor !== undefined) {
        return { outcome: 'retried', session: session.record, expiresAt: successor.expiresAt, sealedSuccessor: token.sealedSuccessor };
      }
      session.revokedAt = req.now;
      return { outcome: 'reused', sessionId: session.record.id, userId: session.record.userId };
    }

    const expiresAt = Math.min(req.now + req.refreshTtl, session.record.expiresAt);
    token.rotatedAt = req.now;
    token.successorHash = req.successorHash;
    token.sealedSuccessor = req.sealedSuccessor;
    this.tokens.set(req.successorHash, newToken(session.record.id, expiresAt));
    return { outcome: 'rotated', session: session.record, expiresAt };
  }

  async revokeSessionByRefreshToken(ref: RefreshTokenRef, now: number): Promise<{ sessionId: string; userId: string } | undefined> {
    const token = this.tokenOf(ref);
    const session = token && this.sessions.get(token.sessionId);
    if (!session) return undefined;
    if (session.revokedAt === 0) session.revokedAt = now;
    return { sessionId: session.record.id, userId: session.record.userId };
  }

  async isSessionActive(sessionId: string, now: number): Promise<boolean> {
    const session = this.sessions.get(sessionId);
    return session !== undefined && session.revokedAt === 0 && now < session.record.expiresAt;
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

  /** The token's entry, if it exists and belongs to the session it names. */
  private tokenOf(ref: RefreshTokenRef): TokenEntry | undefined {
    const token = this.tokens.get(ref.hash);
    return token?.sessionId === ref.sessionId ? token : undefined;
  }

  async connect(): Promise<void> {}

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  /** Drops expired refresh tokens, ended sessions and revoked-session markers past retention. */
  sweep(now: number): { sessions: number; tokens: number } {
    let sessions = 0;
    let tokens = 0;
    for (const [id, entry] of this.sessions) {
      const over = now >= entry.record.expiresAt || (entry.revokedAt !== 0 && now >= entry.revokedAt + this.options.revokedRetention);
      if (over) {
        this.sessions.delete(id);
        sessions++;
      }
    }
    for (const [hash, entry] of this.tokens) {
      if (now >= entry.expiresAt || !this.sessions.has(entry.sessionId)) {
        this.tokens.delete(hash);
        tokens++;
      }
    }
    for (const [key, entry] of this.attempts) if (now >= entry.expiresAt) this.attempts.delete(key);
    return { sessions, tokens };
  }

  /** Entry counts, for tests and metrics. */
  size(): { users: number; sessions: number; tokens: number } {
    return { users: this.users.size, sessions: this.sessions.size, tokens: this.tokens.size };
  }
}

function newToken(sessionId: string, expiresAt: number): TokenEntry {
  return { sessionId, expiresAt, rotatedAt: 0, successorHash: undefined, sealedSuccessor: undefined };
}
