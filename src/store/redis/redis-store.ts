import { Cluster, type Redis } from 'ioredis';
import type { Clock } from '../../clock.js';
import { isEnabledAdmin, mayDemote, type UpdateResult, type UserChange, type UserQuery } from '../../core/accounts.js';
import type { AttemptGrant, AttemptOutcome, BackoffPolicy } from '../../core/login-throttle.js';
import type { LiveUser, NewUser, SessionInfo, UserOrigin, UserRecord } from '../../core/records.js';
import type { ParsedRefreshToken } from '../../core/refresh-token.js';
import type { CreateSessionResult, NewSession, RotateRequest, RotateResult } from '../../core/session-flows.js';
import type { UserSecretsRecord } from '../../core/user-secrets.js';
import { sharedAmr } from '../../core/amr.js';
import { AuthError } from '../../errors.js';
import { redisWhere, type RedisConnection } from './address.js';
import { connectRedis } from './connection.js';
import {
  BEGIN_ATTEMPT,
  CREATE_SERVICE_ACCOUNT,
  CREATE_SESSION,
  CREATE_USER,
  HIT_RATE,
  DELETE_USER,
  WRITE_SECRETS,
  END_ATTEMPT,
  LIST_SESSIONS,
  LIVE_CREDENTIAL,
  LIVE_SESSION,
  RELEASE_NAME,
  REVOKE_BY_TOKEN,
  REVOKE_SESSION,
  ROTATE,
  UPDATE_SERVICE_ACCOUNT,
  UPDATE_USER,
  USE_ASSERTION,
  LEAVE_ADMINS,
} from './scripts.js';
import { MAX_CREDENTIALS, type Credential, type NewCredential, type ServiceAccountChange, type ServiceAccountRecord, type ServiceAccountUpdate } from '../../core/service-accounts.js';
import { StoreSetupError, type Store } from '../store.js';

export interface RedisStoreOptions {
  readonly connection: RedisConnection;
  /** Prefix of every key; lets several deployments share one Redis. */
  readonly keyPrefix?: string;
  /** How long one command may take before the call fails with UNAVAILABLE. */
  readonly commandTimeoutMs: number;
  /** How long a session's state outlives its last refresh token: the access-token TTL plus skew. */
  readonly accessGraceMs: number;
  /** Active sessions one user may hold; a new login past it ends the user's oldest session. */
  readonly maxSessionsPerUser: number;
  /** For tests only: drive the scripts with this clock instead of Redis's own (TIME). */
  readonly clock?: Clock;
}

type Args = Array<string | number | Buffer>;
type Reply = Array<string | number | null>;

interface Scripts {
  authCreateUser(...args: Args): Promise<number>;
  authReleaseName(...args: Args): Promise<number>;
  authUpdateUser(...args: Args): Promise<string | string[]>;
  authDeleteUser(...args: Args): Promise<string | null>;
  authCreateSession(...args: Args): Promise<Reply>;
  authRotate(...args: Args): Promise<Reply>;
  authRevokeByToken(...args: Args): Promise<number>;
  authLiveSession(...args: Args): Promise<Reply | null>;
  authListSessions(...args: Args): Promise<Reply[]>;
  authRevokeSession(...args: Args): Promise<number>;
  authBeginAttempt(...args: Args): Promise<number>;
  authEndAttempt(...args: Args): Promise<number>;
  authCreateServiceAccount(...args: Args): Promise<number>;
  authUpdateServiceAccount(...args: Args): Promise<string | string[]>;
  authLiveCredential(...args: Args): Promise<Reply | null>;
  authUseAssertion(...args: Args): Promise<number>;
  authHitRate(...args: Args): Promise<number>;
  authLeaveAdmins(...args: Args): Promise<'removed' | 'absent' | 'last'>;
  authWriteSecrets(...args: Args): Promise<'written' | 'conflict' | 'user_gone' | 'late'>;
}

const SCRIPTS: Record<keyof Scripts, { keys: number; lua: string }> = {
  authCreateUser: { keys: 1, lua: CREATE_USER },
  authReleaseName: { keys: 1, lua: RELEASE_NAME },
  authUpdateUser: { keys: 2, lua: UPDATE_USER },
  authDeleteUser: { keys: 2, lua: DELETE_USER },
  authCreateSession: { keys: 3, lua: CREATE_SESSION },
  authRotate: { keys: 2, lua: ROTATE },
  authRevokeByToken: { keys: 2, lua: REVOKE_BY_TOKEN },
  authLiveSession: { keys: 2, lua: LIVE_SESSION },
  authListSessions: { keys: 2, lua: LIST_SESSIONS },
  authRevokeSession: { keys: 3, lua: REVOKE_SESSION },
  authBeginAttempt: { keys: 1, lua: BEGIN_ATTEMPT },
  authEndAttempt: { keys: 1, lua: END_ATTEMPT },
  authCreateServiceAccount: { keys: 1, lua: CREATE_SERVICE_ACCOUNT },
  authUpdateServiceAccount: { keys: 1, lua: UPDATE_SERVICE_ACCOUNT },
  authLiveCredential: { keys: 1, lua: LIVE_CREDENTIAL },
  authUseAssertion: { keys: 1, lua: USE_ASSERTION },
  authHitRate: { keys: 1, lua: HIT_RATE },
  authLeaveAdmins: { keys: 1, lua: LEAVE_ADMINS },
  authWriteSecrets: { keys: 2, lua: WRITE_SECRETS },
};

const NAME_SEPARATOR = '\u0000';

/** What the last-admin rule reads of a user or service account. */
type Admin = { readonly roles: readonly string[]; readonly disabled: boolean };

/**
 * Added to a write's deadline: room for the clocks of a Cluster's primaries to differ from the one
 * whose TIME this instance read, so a write that runs on time is never taken for a late one.
 */
export const CLOCK_SLACK_MS = 250;

/**
 * The shared store for several instances, on Redis (one server, Sentinel or Cluster). Every
 * decision is a Lua script on one hash slot (see redis-scripts.ts); keys expire on their own.
 * Redis down or slow fails calls at once with `unavailable`: no offline queue, no retries inside
 * a call, a bounded command time; ioredis reconnects in the background, so the service recovers
 * by itself. Only this module and redis-connection.ts import ioredis.
 */
export class RedisStore implements Store {
  private readonly redis: (Redis | Cluster) & Scripts;
  private readonly prefix: string;
  private closed = false;
  /** The client's last connection error (ECONNREFUSED, a TLS failure ...): what a failed health check reports. */
  private lastError: Error | undefined;

  constructor(private readonly options: RedisStoreOptions) {
    this.prefix = options.keyPrefix ?? 'auth:';
    const redis = connectRedis(options.connection, options.commandTimeoutMs);
    for (const [name, { keys, lua }] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys: keys, lua });
    redis.on('error', (err: Error) => (this.lastError = err));
    redis.on('close', () => (this.lastError ??= new Error('the connection closed')));
    redis.on('ready', () => (this.lastError = undefined));
    this.redis = redis as (Redis | Cluster) & Scripts;
  }

  /** The client, for the health check and tests. */
  get client(): Redis | Cluster {
    return this.redis;
  }

  /**
   * A single server must be a plain one: a Cluster node or a Sentinel named by AUTH_REDIS_URL would
   * answer PING and then fail every call (MOVED, unknown command). Checked once it answers.
   */
  private async checkTopology(): Promise<void> {
    if (this.topologyChecked || this.options.connection.kind !== 'single') return;
    const info = await this.call(() => (this.redis as Redis).info('server'));
    const mode = /redis_mode:(\w+)/.exec(info)?.[1] ?? 'standalone';
    if (mode === 'cluster') throw new StoreSetupError('AUTH_REDIS_URL names a node of a Redis Cluster: list the Cluster\'s nodes in AUTH_REDIS_CLUSTER_NODES instead');
    if (mode === 'sentinel') throw new StoreSetupError('AUTH_REDIS_URL names a Redis Sentinel: set AUTH_REDIS_SENTINELS and AUTH_REDIS_SENTINEL_NAME instead');
    this.topologyChecked = true;
  }

  private topologyChecked = false;

  /**
   * Starts connecting and resolves at the client's first 'ready'. Not connect()'s own promise
   * alone: a Cluster client whose ready check fails reconnects by itself and gets ready, but the
   * promise of that first connect() then never settles (ioredis 6). Bounded all the same.
   */
  private firstReady(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: unknown) => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onReady = () => done();
      const timer = setTimeout(() => done(new Error('Redis did not get ready in time')), Math.max(this.options.commandTimeoutMs * 4, 5000));
      timer.unref();
      this.redis.once('ready', onReady);
      this.redis.connect().then(() => done(), done);
    });
  }

  /**
   * Connects; rejects with `unavailable` when Redis cannot be reached (ioredis keeps trying after),
   * and with StoreSetupError when what answers is not what the settings say.
   */
  async connect(): Promise<void> {
    if (this.redis.status === 'wait') {
      try {
        await this.firstReady();
      } catch (err) {
        throw new AuthError('unavailable', 'session store unavailable', { cause: err });
      }
    }
    await this.ping();
  }

  // --- keys -------------------------------------------------------------------------------

  private userKey(userId: string): string {
    return `${this.prefix}{${userId}}:u`;
  }

  private sessionKey(userId: string, sessionId: string): string {
    return `${this.prefix}{${userId}}:s:${sessionId}`;
  }

  private sessionsKey(userId: string): string {
    return `${this.prefix}{${userId}}:ss`;
  }

  /** The user's secrets document (DELETE_USER derives it from the user key: keep the two in step). */
  private secretsKey(userId: string): string {
    return `${this.prefix}{${userId}}:x`;
  }

  private nameKey(username: string): string {
    return `${this.prefix}n:{${username}}`;
  }

  private skeletonKey(skeleton: string): string {
    return `${this.prefix}k:{${skeleton}}`;
  }

  private get usersKey(): string {
    return `${this.prefix}users`;
  }

  private get fileUsersKey(): string {
    return `${this.prefix}fileusers`;
  }

  async fileUserIds(): Promise<string[]> {
    return this.call(() => this.redis.smembers(this.fileUsersKey));
  }

  private attemptKey(key: string): string {
    return `${this.prefix}a:{${key}}`;
  }

  /**
   * ARGV[1] of every script: "<now>;<not after>". Now is the test clock's time, or empty for
   * Redis's own. Not after is when this instance stops waiting for the reply, on Redis's clock:
   * estimated from the last TIME reading and a monotonic clock since, so the instance's own wall
   * clock plays no part.
   */
  private clockArg(): string {
    const fixed = this.options.clock?.now();
    const redisNow = fixed ?? (this.redisTime ? this.redisTime.at + (performance.now() - this.redisTime.mono) : undefined);
    return `${fixed ?? ''};${redisNow === undefined ? '' : Math.ceil(redisNow + this.options.commandTimeoutMs + CLOCK_SLACK_MS)}`;
  }

  /** Redis's clock at a moment of this process's monotonic clock (read by every health check). */
  private redisTime: { at: number; mono: number } | undefined;

  private async readRedisTime(): Promise<void> {
    const sent = performance.now();
    const [seconds, micros] = await this.call(() => this.redis.time());
    const received = performance.now();
    this.redisTime = { at: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000), mono: (sent + received) / 2 };
  }

  /** A reply saying the script ran too late to act (see clockArg): the caller has been told UNAVAILABLE, or is told now. */
  private notLate<T>(reply: T): T {
    if (reply === 'late' || reply === -1 || (Array.isArray(reply) && reply[0] === 'late')) throw new AuthError('unavailable', 'session store unavailable', { cause: new Error('the store ran the operation after its deadline; nothing was done') });
    return reply;
  }

  private async call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (err) {
      throw new AuthError('unavailable', 'session store unavailable', { cause: err });
    }
  }

  // --- the last-admin rule ----------------------------------------------------------------
  //
  // Users and service accounts live in many slots, so no one script can count the enabled admins.
  // The set P{admins}:set, in a slot of its own, holds a subset of them: whoever may stop being an
  // admin leaves the set (LEAVE_ADMINS, which refuses the last) before their record changes, and
  // whoever is an enabled admin after a write joins it after. A write cut short can only leave an
  // admin out (a refusal too many, never one too few), and their next change puts them back. So
  // however many instances demote each other at once, one enabled admin always remains.

  private get adminsKey(): string {
    return `${this.prefix}{admins}:set`;
  }

  /** Before a change that may demote `id`: out of the set; true (refused, nothing changed) when it is the last and `keep` asks. */
  private async leaveAdmins(id: string, keep: boolean | undefined): Promise<boolean> {
    if (!keep) {
      await this.call(() => this.redis.srem(this.adminsKey, id));
      return false;
    }
    this.adminsFilled ??= this.fillAdmins().catch((err: unknown) => {
      this.adminsFilled = undefined;
      throw err;
    });
    await this.adminsFilled;
    return (await this.call(() => this.redis.authLeaveAdmins(this.adminsKey, id))) === 'last';
  }

  /** After a write (or one that did not happen): `id` joins the set when its record is an enabled admin. */
  private async noteAdmin(id: string, record: Admin | undefined): Promise<void> {
    if (record && isEnabledAdmin(record)) await this.call(() => this.redis.sadd(this.adminsKey, id));
  }

  /**
   * A write of a user or service account under the rule: out of the set before a change that may
   * demote (refused for the last), back in after when the record it leaves is an enabled admin.
   * A write refused or not found leaves what was before, so a demotion that did not happen rejoins.
   */
  private async underAdminRule<R extends { readonly outcome: string }>(
    id: string,
    change: { readonly roles?: readonly string[]; readonly disabled?: boolean; readonly keepAnAdmin?: boolean },
    write: () => Promise<R>,
    written: (result: R) => Admin | undefined,
    reread: () => Promise<Admin | undefined>,
  ): Promise<R | { readonly outcome: 'last_admin' }> {
    const demotes = mayDemote(change);
    if (demotes && (await this.leaveAdmins(id, change.keepAnAdmin))) return { outcome: 'last_admin' };
    const result = await write();
    if (change.roles !== undefined || change.disabled !== undefined) await this.noteAdmin(id, written(result) ?? (demotes ? await reread() : undefined));
    return result;
  }

  private adminsFilled: Promise<void> | undefined;

  /**
   * Once per deployment (a Redis that held users before the set existed): every enabled admin
   * joins it, before the first change that asks the rule. (Two instances filling it while a third
   * demotes someone could let that one back in: a window only at the first such change.)
   */
  private async fillAdmins(): Promise<void> {
    const built = `${this.prefix}{admins}:built`;
    if ((await this.call(() => this.redis.exists(built))) === 1) return;
    for (const list of [(q: UserQuery) => this.listUsers(q), (q: UserQuery) => this.listServiceAccounts(q)]) {
      for (let after: string | undefined; ; ) {
        const page: Array<{ id: string; roles: readonly string[]; disabled: boolean; username?: string; name?: string }> = await list({ prefix: '', after, limit: 1000 });
        const admins = page.filter(isEnabledAdmin).map((r) => r.id);
        if (admins.length > 0) await this.call(() => this.redis.sadd(this.adminsKey, ...admins));
        if (page.length < 1000) break;
        const last = page[page.length - 1]!;
        after = last.username ?? last.name;
      }
    }
    await this.call(() => this.redis.set(built, '1'));
  }

  // --- users ------------------------------------------------------------------------------

  /**
   * Three keys in three slots, written in an order that survives a crash between any two: the
   * user (invisible until named), the name (the atomic uniqueness check), the listing entry. A
   * name whose user was never written is reclaimed; a user whose name was taken is removed.
   */
  async createUser(user: NewUser, claims?: { readonly skeleton: string }): Promise<'created' | 'exists' | 'confusable'> {
    const created = await this.call(() =>
      this.redis.authCreateUser(this.userKey(user.id), this.clockArg(), user.id, user.username, user.passwordHash, JSON.stringify(user.roles), user.disabled ? 1 : 0, user.origin, user.fileDigest ?? '', claims?.skeleton ?? ''),
    );
    if (created === 0) return 'exists';
    for (let attempt = 0; attempt < 2; attempt++) {
      if ((await this.call(() => this.redis.set(this.nameKey(user.username), user.id, 'NX'))) === 'OK') {
        // The look of the name next, claimed the same way; a holder whose user is gone is reclaimed.
        if (claims && !(await this.claim(this.skeletonKey(claims.skeleton), user.id))) {
          await this.call(() => this.redis.authReleaseName(this.nameKey(user.username), user.id));
          await this.call(() => this.redis.del(this.userKey(user.id)));
          return 'confusable';
        }
        await this.call(() => this.redis.zadd(this.usersKey, 0, `${user.username}${NAME_SEPARATOR}${user.id}`));
        if (user.origin === 'file') await this.call(() => this.redis.sadd(this.fileUsersKey, user.id));
        await this.noteAdmin(user.id, user);
        return 'created';
      }
      const holder = await this.call(() => this.redis.get(this.nameKey(user.username)));
      if (holder === null || (await this.call(() => this.redis.exists(this.userKey(holder)))) === 1) break;
      await this.call(() => this.redis.authReleaseName(this.nameKey(user.username), holder));
    }
    await this.call(() => this.redis.del(this.userKey(user.id)));
    return 'exists';
  }

  /** SET NX of `key` to `userId`, taking it over from a user that no longer exists. */
  private async claim(key: string, userId: string): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if ((await this.call(() => this.redis.set(key, userId, 'NX'))) === 'OK') return true;
      const holder = await this.call(() => this.redis.get(key));
      if (holder === userId) return true;
      if (holder === null || (await this.call(() => this.redis.exists(this.userKey(holder)))) === 1) return false;
      await this.call(() => this.redis.authReleaseName(key, holder));
    }
    return false;
  }

  async findUserByUsername(username: string): Promise<UserRecord | undefined> {
    const id = await this.call(() => this.redis.get(this.nameKey(username)));
    return id === null ? undefined : this.getUser(id);
  }

  async getUser(userId: string): Promise<UserRecord | undefined> {
    const fields = await this.call(() => this.redis.hgetall(this.userKey(userId)));
    return userOf(userId, fields);
  }

  async listUsers(query: UserQuery): Promise<UserRecord[]> {
    const min = query.after !== undefined && query.after >= query.prefix ? Buffer.from(`[${query.after}\u0001`) : Buffer.from(`[${query.prefix}`);
    const max = query.prefix === '' ? '+' : Buffer.concat([Buffer.from(`[${query.prefix}`), Buffer.from([0xff])]);
    const members = await this.call(() => this.redis.zrangebylex(this.usersKey, min, max, 'LIMIT', 0, query.limit));
    const users = await Promise.all(members.map((m) => this.getUser(m.slice(m.indexOf(NAME_SEPARATOR) + 1))));
    // A listing entry whose user is gone (a delete cut short) is skipped; the next delete tidies it.
    return users.filter((u): u is UserRecord => u !== undefined);
  }

  async updateUser(userId: string, change: UserChange): Promise<UpdateResult> {
    return this.underAdminRule(userId, change, () => this.writeUser(userId, change), (r) => (r.outcome === 'updated' ? r.user : undefined), () => this.getUser(userId));
  }

  private async writeUser(userId: string, change: UserChange): Promise<UpdateResult> {
    const kept = change.keepSession === undefined ? this.userKey(userId) : this.sessionKey(userId, change.keepSession);
    const reply = this.notLate(await this.call(() =>
      this.redis.authUpdateUser(
        this.userKey(userId),
        kept,
        this.clockArg(),
        change.ifRevision ?? '',
        change.roles ? JSON.stringify(change.roles) : '',
        change.passwordHash ?? '',
        change.disabled === undefined ? '' : change.disabled ? 1 : 0,
        change.revokeSessions ? '1' : '',
        change.fileDigest ?? '',
      ),
    ));
    if (reply === 'not_found' || reply === 'conflict') return { outcome: reply };
    return { outcome: 'updated', user: userOf(userId, fieldsOf(reply as string[]))! };
  }

  async deleteUser(userId: string, options: { readonly keepAnAdmin?: boolean } = {}): Promise<UserRecord | undefined | 'last_admin'> {
    const user = await this.getUser(userId);
    if (!user) return undefined;
    if (await this.leaveAdmins(userId, options.keepAnAdmin)) return 'last_admin';
    const skeleton = await this.call(() => this.redis.hget(this.userKey(userId), 'k'));
    const name = await this.call(() => this.redis.authDeleteUser(this.userKey(userId), this.sessionsKey(userId)));
    if (name === null) return undefined;
    await this.call(() => this.redis.authReleaseName(this.nameKey(name), userId));
    if (skeleton) await this.call(() => this.redis.authReleaseName(this.skeletonKey(skeleton), userId));
    await this.call(() => this.redis.zrem(this.usersKey, `${name}${NAME_SEPARATOR}${userId}`));
    await this.call(() => this.redis.srem(this.fileUsersKey, userId));
    return user;
  }

  // --- sessions ---------------------------------------------------------------------------

  async createSession(req: NewSession): Promise<CreateSessionResult> {
    const r = this.notLate(await this.call(() =>
      this.redis.authCreateSession(
        this.userKey(req.userId),
        this.sessionKey(req.userId, req.sessionId),
        this.sessionsKey(req.userId),
        this.clockArg(),
        req.userGeneration,
        req.refreshHash,
        req.refreshTtlMs,
        req.sessionMaxAgeMs,
        req.clientAddress,
        req.userAgent,
        this.options.maxSessionsPerUser,
        this.options.accessGraceMs,
        req.sessionId,
        req.amr.join(' '),
      ),
    ));
    if (r[0] === 'refused') return { outcome: 'refused', why: r[1] as 'user_gone' | 'disabled' | 'revoked' };
    const now = Number(r[1]);
    return { outcome: 'created', now, expiresAt: Number(r[2]), refreshExpiresAt: Number(r[3]), authTime: now, amr: req.amr, user: liveOf(req.userId, r, 4) };
  }

  async rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    const r = this.notLate(await this.call(() =>
      this.redis.authRotate(
        this.userKey(req.userId),
        this.sessionKey(req.userId, req.sessionId),
        this.clockArg(),
        req.generation,
        req.hash,
        req.successorHash,
        req.sealedSuccessor,
        req.refreshTtlMs,
        req.reuseIntervalMs,
        this.options.accessGraceMs,
        req.tagged ? '1' : '',
      ),
    ));
    const session = (at: number) => ({ now: Number(r[1]), expiresAt: Number(r[2]), refreshExpiresAt: Number(r[3]), authTime: Number(r[at]), amr: sharedAmr(String(r[at + 1] ?? '') || 'pwd') });
    switch (r[0]) {
      case 'rotated':
        return { outcome: 'rotated', ...session(7), user: liveOf(req.userId, r, 4) };
      case 'retried':
        return { outcome: 'retried', ...session(8), sealedSuccessor: String(r[4]), user: liveOf(req.userId, r, 5) };
      case 'reused':
        return { outcome: 'reused', sessionId: req.sessionId, userId: req.userId };
      default:
        return { outcome: 'invalid', why: r[1] as 'unknown' | 'expired' | 'revoked' };
    }
  }

  async revokeSessionByRefreshToken(token: ParsedRefreshToken): Promise<{ sessionId: string; userId: string } | undefined> {
    const revoked = this.notLate(await this.call(() => this.redis.authRevokeByToken(this.userKey(token.userId), this.sessionKey(token.userId, token.sessionId), this.clockArg(), token.generation, token.hash, token.tagged ? '1' : '')));
    return revoked === 1 ? { sessionId: token.sessionId, userId: token.userId } : undefined;
  }

  async readUserSecrets(userId: string): Promise<UserSecretsRecord | undefined> {
    const [v, d] = await this.call(() => this.redis.hmget(this.secretsKey(userId), 'v', 'd'));
    return v == null || d == null ? undefined : { version: Number(v), data: d };
  }

  async writeUserSecrets(userId: string, ifVersion: number, data: string | undefined): Promise<'written' | 'conflict' | 'user_gone'> {
    const outcome = this.notLate(await this.call(() => this.redis.authWriteSecrets(this.userKey(userId), this.secretsKey(userId), this.clockArg(), ifVersion, data ?? '')));
    return outcome as 'written' | 'conflict' | 'user_gone';
  }

  async liveSession(userId: string, sessionId: string): Promise<LiveUser | undefined> {
    const r = await this.call(() => this.redis.authLiveSession(this.userKey(userId), this.sessionKey(userId, sessionId), this.clockArg(), this.options.accessGraceMs));
    return r === null ? undefined : liveOf(userId, r, 0);
  }

  async listSessions(userId: string): Promise<SessionInfo[]> {
    const rows = await this.call(() => this.redis.authListSessions(this.userKey(userId), this.sessionsKey(userId), this.clockArg(), this.options.accessGraceMs));
    return rows.map((r) => ({
      id: String(r[0]),
      userId,
      createdAt: Number(r[1]),
      lastRefreshedAt: Number(r[2]),
      expiresAt: Number(r[3]),
      refreshExpiresAt: Number(r[4]),
      clientAddress: String(r[5] ?? ''),
      userAgent: String(r[6] ?? ''),
    }));
  }

  async revokeSession(userId: string, sessionId: string): Promise<boolean> {
    const revoked = this.notLate(await this.call(() =>
      this.redis.authRevokeSession(this.userKey(userId), this.sessionKey(userId, sessionId), this.sessionsKey(userId), this.clockArg(), this.options.accessGraceMs, sessionId),
    ));
    return revoked === 1;
  }

  // --- service accounts -------------------------------------------------------------------

  private accountKey(id: string): string {
    return `${this.prefix}{${id}}:a`;
  }

  private accountNameKey(name: string): string {
    return `${this.prefix}n:sa:{${name}}`;
  }

  private get accountsKey(): string {
    return `${this.prefix}sas`;
  }

  /** As createUser: the account first, then its name (the uniqueness check), then the listing. */
  async createServiceAccount(account: { id: string; name: string; roles: readonly string[]; credential: NewCredential }): Promise<'created' | 'exists'> {
    const created = await this.call(() =>
      this.redis.authCreateServiceAccount(this.accountKey(account.id), this.clockArg(), account.name, JSON.stringify(account.roles), account.credential.id, JSON.stringify(account.credential)),
    );
    if (created === 0) return 'exists';
    for (let attempt = 0; attempt < 2; attempt++) {
      if ((await this.call(() => this.redis.set(this.accountNameKey(account.name), account.id, 'NX'))) === 'OK') {
        await this.call(() => this.redis.zadd(this.accountsKey, 0, `${account.name}${NAME_SEPARATOR}${account.id}`));
        await this.noteAdmin(account.id, { roles: account.roles, disabled: false });
        return 'created';
      }
      const holder = await this.call(() => this.redis.get(this.accountNameKey(account.name)));
      if (holder === null || (await this.call(() => this.redis.exists(this.accountKey(holder)))) === 1) break;
      await this.call(() => this.redis.authReleaseName(this.accountNameKey(account.name), holder));
    }
    await this.call(() => this.redis.del(this.accountKey(account.id)));
    return 'exists';
  }

  async getServiceAccount(id: string): Promise<ServiceAccountRecord | undefined> {
    return accountOf(id, await this.call(() => this.redis.hgetall(this.accountKey(id))));
  }

  async listServiceAccounts(query: UserQuery): Promise<ServiceAccountRecord[]> {
    const min = query.after !== undefined && query.after >= query.prefix ? Buffer.from(`[${query.after}\u0001`) : Buffer.from(`[${query.prefix}`);
    const max = query.prefix === '' ? '+' : Buffer.concat([Buffer.from(`[${query.prefix}`), Buffer.from([0xff])]);
    const members = await this.call(() => this.redis.zrangebylex(this.accountsKey, min, max, 'LIMIT', 0, query.limit));
    const accounts = await Promise.all(members.map((m) => this.getServiceAccount(m.slice(m.indexOf(NAME_SEPARATOR) + 1))));
    return accounts.filter((a): a is ServiceAccountRecord => a !== undefined);
  }

  async updateServiceAccount(id: string, change: ServiceAccountChange): Promise<ServiceAccountUpdate> {
    return this.underAdminRule(id, change, () => this.writeServiceAccount(id, change), (r) => (r.outcome === 'updated' ? r.account : undefined), () => this.getServiceAccount(id));
  }

  private async writeServiceAccount(id: string, change: ServiceAccountChange): Promise<ServiceAccountUpdate> {
    const reply = this.notLate(await this.call(() =>
      this.redis.authUpdateServiceAccount(
        this.accountKey(id),
        this.clockArg(),
        change.roles ? JSON.stringify(change.roles) : '',
        change.disabled === undefined ? '' : change.disabled ? '1' : '0',
        MAX_CREDENTIALS,
        change.addCredential ? JSON.stringify(change.addCredential) : '',
        change.removeCredential?.id ?? '',
        change.removeCredential?.type ?? '',
      ),
    ));
    if (typeof reply === 'string') return { outcome: reply as 'not_found' | 'no_such_credential' | 'too_many_credentials' | 'credential_exists' | 'kid_taken' };
    return { outcome: 'updated', account: accountOf(id, fieldsOf(reply))! };
  }

  async deleteServiceAccount(id: string, options: { readonly keepAnAdmin?: boolean } = {}): Promise<boolean | 'last_admin'> {
    const account = await this.getServiceAccount(id);
    if (!account) return false;
    if (await this.leaveAdmins(id, options.keepAnAdmin)) return 'last_admin';
    await this.call(() => this.redis.del(this.accountKey(id)));
    await this.call(() => this.redis.authReleaseName(this.accountNameKey(account.name), id));
    await this.call(() => this.redis.zrem(this.accountsKey, `${account.name}${NAME_SEPARATOR}${id}`));
    return true;
  }

  async liveCredential(serviceAccountId: string, credentialId: string): Promise<LiveUser | undefined> {
    const r = await this.call(() => this.redis.authLiveCredential(this.accountKey(serviceAccountId), credentialId));
    return r === null ? undefined : liveOf(serviceAccountId, r, 0);
  }

  async useAssertion(serviceAccountId: string, jti: string, expiresAt: number): Promise<boolean> {
    return (await this.call(() => this.redis.authUseAssertion(`${this.prefix}{${serviceAccountId}}:j:${jti}`, this.clockArg(), expiresAt))) === 1;
  }

  async hitRate(key: string, limit: number, windowMs: number): Promise<{ allowed: boolean; retryAfterMs: number }> {
    const wait = Number(await this.call(() => this.redis.authHitRate(`${this.prefix}r:{${key}}`, this.clockArg(), limit, windowMs)));
    return { allowed: wait === 0, retryAfterMs: wait };
  }

  // --- login attempts ---------------------------------------------------------------------

  private policyArgs(policy: BackoffPolicy): Args {
    return [policy.freeFailures, policy.baseDelayMs, policy.maxDelayMs, policy.maxFailures, policy.windowMs, policy.shortWindowMs];
  }

  private async attempt(key: string, policy: BackoffPolicy, mode: 'check' | 'begin'): Promise<AttemptGrant> {
    const wait = await this.call(() => this.redis.authBeginAttempt(this.attemptKey(key), this.clockArg(), ...this.policyArgs(policy), mode));
    return Number(wait) === 0 ? { allowed: true } : { allowed: false, retryAfterMs: Number(wait) };
  }

  checkAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    return this.attempt(key, policy, 'check');
  }

  beginAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    return this.attempt(key, policy, 'begin');
  }

  async endAttempt(key: string, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void> {
    await this.call(() => this.redis.authEndAttempt(this.attemptKey(key), this.clockArg(), ...this.policyArgs(policy), outcome));
  }

  async recordFailure(key: string, policy: BackoffPolicy): Promise<void> {
    await this.call(() => this.redis.authEndAttempt(this.attemptKey(key), this.clockArg(), ...this.policyArgs(policy), 'record'));
  }

  async resetAttempts(key: string): Promise<void> {
    await this.call(() => this.redis.del(this.attemptKey(key)));
  }

  // --- lifecycle --------------------------------------------------------------------------

  /**
   * Resolves when the store can serve: Redis's clock is read (for the deadlines of writes) and a
   * small write goes through, so a full `noeviction` Redis, a replica mistaken for the primary,
   * or a Cluster with slots down all count as "cannot serve", not only a dead connection.
   */
  /**
   * Whether the store can serve. A failure names where Redis was looked for and why it could not be
   * used (the client's own "Stream isn't writeable" says neither): `redis 10.0.0.5:6379: connect ECONNREFUSED ...`.
   */
  async ping(): Promise<void> {
    try {
      await this.canServe();
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      const why = this.lastError?.message ?? (err.cause instanceof Error ? err.cause.message : err.message);
      throw new AuthError('unavailable', 'session store unavailable', { cause: new Error(`${redisWhere(this.options.connection)}: ${why}`) });
    }
  }

  private async canServe(): Promise<void> {
    await this.checkTopology();
    await this.readRedisTime();
    await this.call(() => this.redis.set(`${this.prefix}health`, '1', 'PX', 60_000));
    if (this.redis instanceof Cluster) {
      const info = await this.call(() => (this.redis as Cluster).cluster('INFO') as Promise<string>);
      if (!/cluster_state:ok/.test(info)) throw new AuthError('unavailable', 'session store unavailable', { cause: new Error('cluster_state is not ok') });
      await Promise.all((this.redis as Cluster).nodes('master').map((node) => this.call(() => node.ping())));
    }
  }

  /** Idempotent: a second disconnect of an ended ioredis client keeps the process alive. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.redis.disconnect();
  }
}

function fieldsOf(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

function userOf(id: string, f: Record<string, string>): UserRecord | undefined {
  if (f.n === undefined) return undefined;
  return {
    id,
    username: f.n,
    passwordHash: f.ph ?? '',
    roles: JSON.parse(f.ro ?? '[]') as string[],
    createdAt: Number(f.c),
    passwordChangedAt: Number(f.pc),
    disabled: f.d === '1',
    generation: Number(f.g),
    revision: Number(f.rv),
    origin: (f.o ?? 'api') as UserOrigin,
    fileDigest: f.fd === '' ? undefined : f.fd,
  };
}

function accountOf(id: string, f: Record<string, string>): ServiceAccountRecord | undefined {
  if (f.n === undefined) return undefined;
  const credentials = Object.entries(f)
    .filter(([field]) => field.startsWith('cr:'))
    .map(([, json]) => JSON.parse(json) as Credential)
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  return { id, name: f.n, roles: JSON.parse(f.ro ?? '[]') as string[], disabled: f.d === '1', createdAt: Number(f.c), revision: Number(f.rv), credentials };
}

function liveOf(userId: string, reply: Reply, at: number): LiveUser {
  return { id: userId, username: String(reply[at]), roles: JSON.parse(String(reply[at + 1])) as string[], revision: Number(reply[at + 2]) };
}

