import { Redis } from 'ioredis';
import { AuthError } from '../errors.js';
import { BEGIN_ATTEMPT, END_ATTEMPT, REVOKE, ROTATE } from './redis-scripts.js';
import type { AttemptGrant, AttemptOutcome, BackoffPolicy, NewSession, RefreshTokenRef, RotateRequest, RotateResult, SessionRecord, Store, UserRecord } from './store.js';

export interface RedisStoreOptions {
  /** redis:// or rediss:// URL. */
  readonly url: string;
  /** Prefix of every key; lets several deployments share one Redis. */
  readonly keyPrefix?: string;
  /** How long one command may take before the call fails with UNAVAILABLE (ms). */
  readonly commandTimeout: number;
  /** How long a revoked session's marker is kept (ms): at least the access-token TTL plus skew. */
  readonly revokedRetention: number;
}

type Reply = Array<string | number | null>;

interface ScriptCommands {
  authRotate(...args: Array<string | number>): Promise<Reply>;
  authRevoke(...args: Array<string | number>): Promise<string | null>;
  authBeginAttempt(...args: Array<string | number>): Promise<number>;
  authEndAttempt(...args: Array<string | number>): Promise<number>;
}

/**
 * The shared store for several instances, on Redis. Rotation, re-use detection, logout and
 * login-attempt counters are Lua scripts (atomic); keys of a session share a hash tag (one Cluster
 * slot) and expire on their own. Redis down or slow fails calls at once with `unavailable`:
 * no offline queue, no retries inside a call, a bounded command time; ioredis reconnects in the
 * background, so the service recovers by itself. Only this module imports ioredis.
 */
export class RedisStore implements Store {
  private readonly redis: Redis & ScriptCommands;
  private readonly prefix: string;
  private closed = false;

  constructor(private readonly options: RedisStoreOptions) {
    this.prefix = options.keyPrefix ?? 'auth:';
    const redis = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeout,
      connectTimeout: Math.max(options.commandTimeout, 1000),
      // Reconnect forever, never more than a second apart.
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 1000),
      lazyConnect: true,
    });
    // Connection errors surface on the calls that fail; without a listener ioredis would print them.
    redis.on('error', () => {});
    redis.defineCommand('authRotate', { numberOfKeys: 3, lua: ROTATE });
    redis.defineCommand('authRevoke', { numberOfKeys: 2, lua: REVOKE });
    redis.defineCommand('authBeginAttempt', { numberOfKeys: 1, lua: BEGIN_ATTEMPT });
    redis.defineCommand('authEndAttempt', { numberOfKeys: 1, lua: END_ATTEMPT });
    this.redis = redis as Redis & ScriptCommands;
  }

  /** Connects; rejects with `unavailable` when Redis cannot be reached (ioredis keeps trying after). */
  async connect(): Promise<void> {
    if (this.redis.status === 'wait') {
      try {
        await this.redis.connect();
      } catch (err) {
        throw new AuthError('unavailable', 'session store unavailable', { cause: err });
      }
    }
    await this.ping();
  }

  private sessionKey(sessionId: string): string {
    return `${this.prefix}{${sessionId}}:s`;
  }

  private tokenKey(sessionId: string, hash: string): string {
    return `${this.prefix}{${sessionId}}:t:${hash}`;
  }

  private async call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw new AuthError('unavailable', 'session store unavailable', { cause: err });
    }
  }

  async createUser(user: UserRecord): Promise<'created' | 'exists'> {
    const ok = await this.call(() => this.redis.set(`${this.prefix}u:{${user.username}}`, JSON.stringify(user), 'NX'));
    return ok === 'OK' ? 'created' : 'exists';
  }

  async findUserByUsername(username: string): Promise<UserRecord | undefined> {
    const json = await this.call(() => this.redis.get(`${this.prefix}u:{${username}}`));
    return json === null ? undefined : (JSON.parse(json) as UserRecord);
  }

  async createSession({ session, refreshHash, refreshExpiresAt }: NewSession): Promise<void> {
    const sessionKey = this.sessionKey(session.id);
    const tokenKey = this.tokenKey(session.id, refreshHash);
    await this.call(() =>
      this.redis
        .multi()
        .hset(sessionKey, {
          userId: session.userId,
          username: session.username,
          roles: JSON.stringify(session.roles),
          createdAt: session.createdAt,
          expiresAt: session.expiresAt,
          revokedAt: 0,
        })
        .pexpireat(sessionKey, session.expiresAt)
        .hset(tokenKey, { expiresAt: refreshExpiresAt, rotatedAt: 0 })
        .pexpireat(tokenKey, refreshExpiresAt)
        .exec(),
    );
  }

  async rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    const reply = await this.call(() =>
      this.redis.authRotate(
        this.sessionKey(req.sessionId),
        this.tokenKey(req.sessionId, req.hash),
        this.tokenKey(req.sessionId, req.successorHash),
        req.now,
        req.refreshTtlMs,
        req.reuseIntervalMs,
        req.successorHash,
        req.sealedSuccessor,
        this.options.revokedRetention,
      ),
    );
    const session = (at: number): SessionRecord => ({
      id: req.sessionId,
      userId: String(reply[at]),
      username: String(reply[at + 1]),
      roles: JSON.parse(String(reply[at + 2])) as string[],
      createdAt: Number(reply[at + 3]),
      expiresAt: Number(reply[at + 4]),
    });
    switch (reply[0]) {
      case 'rotated':
        return { outcome: 'rotated', expiresAt: Number(reply[1]), session: session(2) };
      case 'retried':
        return { outcome: 'retried', expiresAt: Number(reply[1]), sealedSuccessor: String(reply[2]), session: session(3) };
      case 'reused':
        return { outcome: 'reused', sessionId: req.sessionId, userId: String(reply[1]) };
      default:
        return { outcome: 'invalid', why: reply[1] as 'unknown' | 'expired' | 'revoked' };
    }
  }

  async revokeSessionByRefreshToken(ref: RefreshTokenRef, now: number): Promise<{ sessionId: string; userId: string } | undefined> {
    const userId = await this.call(() =>
      this.redis.authRevoke(this.sessionKey(ref.sessionId), this.tokenKey(ref.sessionId, ref.hash), now, this.options.revokedRetention),
    );
    return userId === null ? undefined : { sessionId: ref.sessionId, userId };
  }

  async isSessionActive(sessionId: string, now: number): Promise<boolean> {
    const [expiresAt, revokedAt] = await this.call(() => this.redis.hmget(this.sessionKey(sessionId), 'expiresAt', 'revokedAt'));
    return expiresAt !== null && revokedAt === '0' && now < Number(expiresAt);
  }

  async beginAttempt(key: string, now: number, policy: BackoffPolicy): Promise<AttemptGrant> {
    const { freeFailures, baseDelayMs, maxDelayMs, maxFailures, windowMs } = policy;
    const retryAt = await this.call(() => this.redis.authBeginAttempt(this.attemptKey(key), now, freeFailures, baseDelayMs, maxDelayMs, maxFailures, windowMs));
    return retryAt === 0 ? { allowed: true } : { allowed: false, retryAt: Number(retryAt) };
  }

  async endAttempt(key: string, now: number, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void> {
    await this.call(() => this.redis.authEndAttempt(this.attemptKey(key), now, policy.windowMs, outcome));
  }

  private attemptKey(key: string): string {
    return `${this.prefix}a:{${key}}`;
  }

  async ping(): Promise<void> {
    await this.call(() => this.redis.ping());
  }

  /** Idempotent: a second disconnect of an ended ioredis client keeps the process alive. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.redis.disconnect();
  }
}
