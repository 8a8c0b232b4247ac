import { backoffDelay, type AttemptGrant, type AttemptOutcome, type BackoffPolicy, type NewSession, type RefreshTokenRef, type RotateRequest, type RotateResult, type SessionRecord, type Store, type UserRecord } from './store.js';

/**
 * One object per session, holding the session's active refresh token too: a live session costs
 * one object and two map entries (by id, and by its token's hash). Rotated tokens, kept only for
 * re-use detection, get a small object of their own.
 */
interface SessionEntry extends SessionRecord {
  /** 0 while active. */
  revokedAt: number;
  /** The active refresh token: its hash (also its key in `tokens`) and expiry. */
  tokenHash: string;
  tokenExpiresAt: number;
}

interface RotatedToken {
  readonly session: SessionEntry;
  readonly expiresAt: number;
  readonly rotatedAt: number;
  readonly successorHash: string;
  readonly sealedSuccessor: string;
}

type TokenEntry = SessionEntry | RotatedToken;

const isRotated = (entry: TokenEntry): entry is RotatedToken => 'rotatedAt' in entry;
const sessionOf = (entry: TokenEntry): SessionEntry => (isRotated(entry) ? entry.session : entry);
const recordOf = (s: SessionEntry): SessionRecord => ({ id: s.id, userId: s.userId, username: s.username, roles: s.roles, createdAt: s.createdAt, expiresAt: s.expiresAt });

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
    const { id, userId, username, roles, createdAt, expiresAt } = session;
    const entry: SessionEntry = { id, userId, username, roles, createdAt, expiresAt, revokedAt: 0, tokenHash: refreshHash, tokenExpiresAt: refreshExpiresAt };
    this.sessions.set(id, entry);
    this.tokens.set(refreshHash, entry);
  }

  async rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    const token = this.tokenOf(req);
    const session = token && sessionOf(token);
    if (!token || !session || this.sessions.get(session.id) !== session) return { outcome: 'invalid', why: 'unknown' };
    if (session.revokedAt !== 0) return { outcome: 'invalid', why: 'revoked' };
    const tokenExpiresAt = isRotated(token) ? token.expiresAt : token.tokenExpiresAt;
    if (req.now >= session.expiresAt || req.now >= tokenExpiresAt) return { outcome: 'invalid', why: 'expired' };

    if (isRotated(token)) {
      // Only a retry of the token whose successor is still the session's active one, within the interval.
      const withinInterval = req.now - token.rotatedAt <= req.reuseInterval;
      if (withinInterval && session.tokenHash === token.successorHash) {
        return { outcome: 'retried', session: recordOf(session), expiresAt: session.tokenExpiresAt, sealedSuccessor: token.sealedSuccessor };
      }
      session.revokedAt = req.now;
      return { outcome: 'reused', sessionId: session.id, userId: session.userId };
    }

    const expiresAt = Math.min(req.now + req.refreshTtl, session.expiresAt);
    this.tokens.set(req.hash, { session, expiresAt: session.tokenExpiresAt, rotatedAt: req.now, successorHash: req.successorHash, sealedSuccessor: req.sealedSuccessor });
    session.tokenHash = req.successorHash;
    session.tokenExpiresAt = expiresAt;
    this.tokens.set(req.successorHash, session);
    return { outcome: 'rotated', session: recordOf(session), expiresAt };
  }

  async revokeSessionByRefreshToken(ref: RefreshTokenRef, now: number): Promise<{ sessionId: string; userId: string } | undefined> {
    const token = this.tokenOf(ref);
    const session = token && sessionOf(token);
    if (!session || this.sessions.get(session.id) !== session) return undefined;
    if (session.revokedAt === 0) session.revokedAt = now;
    return { sessionId: session.id, userId: session.userId };
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

  /** The token's entry, if it exists and belongs to the session it names. */
  private tokenOf(ref: RefreshTokenRef): TokenEntry | undefined {
    const token = this.tokens.get(ref.hash);
    return token !== undefined && sessionOf(token).id === ref.sessionId ? token : undefined;
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
    }
    for (const [hash, entry] of this.tokens) {
      const session = sessionOf(entry);
      const expiresAt = isRotated(entry) ? entry.expiresAt : entry.tokenExpiresAt;
      if (now >= expiresAt || this.sessions.get(session.id) !== session) {
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
