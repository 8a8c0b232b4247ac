import { BTree } from './btree.js';
import type { Clock } from '../../clock.js';
import { mayDemote, type UpdateResult, type UserChange, type UserQuery } from '../../core/accounts.js';
import type { AttemptGrant, AttemptOutcome, BackoffPolicy } from '../../core/login-throttle.js';
import type { LiveUser, NewUser, SessionInfo, UserRecord } from '../../core/records.js';
import type { ParsedRefreshToken } from '../../core/refresh-token.js';
import type { NewCredential, ServiceAccountChange, ServiceAccountRecord, ServiceAccountUpdate } from '../../core/service-accounts.js';
import type { CreateSessionResult, NewSession, RotateRequest, RotateResult, SessionTimes } from '../../core/session-flows.js';
import { AdminSet } from './admin-set.js';
import { beginRule, checkRule, endRule, recordRule } from '../attempt-rules.js';
import { AttemptTable } from './attempt-table.js';
import { RateTable } from './rate-table.js';
import { MemoryServiceAccounts } from './service-accounts.js';
import type { Store } from '../store.js';
import type { UserSecretsRecord } from '../../core/user-secrets.js';
import { sharedAmr } from '../../core/amr.js';

export interface MemoryStoreOptions {
  readonly clock: Clock;
  /**
   * How long a session's state outlives its last refresh token: long enough that every access
   * token of it has expired (the access-token TTL plus the clock skew).
   */
  readonly accessGraceMs: number;
  /** Active sessions one user may hold; a new login past it ends the user's oldest session. */
  readonly maxSessionsPerUser: number;
  /** Login-attempt counters held at most (see AttemptTable). */
  readonly maxAttemptEntries: number;
  /** Assertion ids (jti) held at most until they expire; past it new assertions are refused. */
  readonly maxAssertions?: number;
}

/** Client address and user agent as seen at login: shared by the many sessions that have the same. */
interface ClientSeen {
  readonly address: string;
  readonly userAgent: string;
}
const SEEN_CACHE = 10_000;
/** Distinct role lists shared at most (beyond it, each user holds its own copy). */
const SHARED_ROLE_LISTS = 1000;

/** The token rotated last, kept for the reuse interval so a retry gets the same successor. */
interface PreviousToken {
  readonly hash: string;
  readonly rotatedAt: number;
  readonly sealed: string;
}

class UserEntry {
  /** Newest session first; ended sessions leave it when the store next looks. */
  head: SessionEntry | undefined;
  deleted = false;
  /** The skeleton the user claimed at creation (see usernameSkeleton), if any. */
  skeleton: string | undefined;
  /** The user's secrets document (second factor, recovery and reset codes): gone with the user. */
  secrets: UserSecretsRecord | undefined;

  constructor(public record: UserRecord) {}

  replace(record: UserRecord): void {
    this.record = record;
  }
}

/**
 * A session in memory, sized for millions of them (bench: `npm run bench`, "Memory store"): one
 * object in one map, the same size however often it rotates. Times are whole seconds plus one
 * small integer that packs three millisecond remainders: V8 boxes every number that is not a
 * small integer in a 16-byte object of its own per field, and epoch milliseconds never are small
 * (after 2038 seconds are boxed too, and stay exact).
 */
class SessionEntry {
  next: SessionEntry | undefined;
  /** The current refresh token: its generation and hash. */
  generation = 0;
  tokenHash: string;
  previous: PreviousToken | undefined;
  lastRefreshedSeconds: number;
  private createdSeconds: number;
  private expiresSeconds: number;
  private tokenExpiresSeconds: number;
  private millis: number;

  constructor(
    readonly id: string,
    readonly user: UserEntry,
    /** The user's generation when the session began (or was kept): a revoke-all moves the user's past it. */
    public userGeneration: number,
    readonly seen: ClientSeen,
    tokenHash: string,
    createdAt: number,
    expiresAt: number,
    tokenExpiresAt: number,
    /** How the user authenticated: one of a few shared frozen lists. */
    readonly amr: readonly string[],
  ) {
    this.tokenHash = tokenHash;
    this.createdSeconds = Math.floor(createdAt / 1000);
    this.expiresSeconds = Math.floor(expiresAt / 1000);
    this.tokenExpiresSeconds = Math.floor(tokenExpiresAt / 1000);
    this.lastRefreshedSeconds = this.createdSeconds;
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

  /**
   * Active: within its lifetime and not idle past its last refresh token plus `graceMs` (when no
   * access token of it can be valid any more), its user there and enabled, not ended by a revoke-all.
   */
  active(now: number, graceMs: number): boolean {
    const user = this.user;
    return now < this.expiresAt && now < this.tokenExpiresAt + graceMs && !user.deleted && !user.record.disabled && this.userGeneration >= user.record.generation;
  }

  times(now: number): SessionTimes {
    return { now, expiresAt: this.expiresAt, refreshExpiresAt: this.tokenExpiresAt, authTime: this.createdAt, amr: this.amr };
  }

  info(): SessionInfo {
    return {
      id: this.id,
      userId: this.user.record.id,
      createdAt: this.createdAt,
      lastRefreshedAt: Math.max(this.lastRefreshedSeconds * 1000, this.createdAt),
      expiresAt: this.expiresAt,
      refreshExpiresAt: this.tokenExpiresAt,
      clientAddress: this.seen.address,
      userAgent: this.seen.userAgent,
    };
  }
}

/**
 * The default store: everything in this process, nothing on disk. Each method runs to completion
 * within one turn of the event loop, which makes every operation atomic. A user owns their
 * sessions (a list through the sessions themselves: no per-user collection), so revoking all of
 * them is one generation bump and listing them walks only theirs. `sweep` drops what has expired;
 * the service runs it on a timer.
 */
export class MemoryStore implements Store {
  private readonly byId = new Map<string, UserEntry>();
  /** Users in username order: name lookups and ListUsers pages without a scan. */
  private readonly byName = new BTree<string, UserEntry>();
  /** Users by the skeleton of their name: one user per look. */
  private readonly bySkeleton = new Map<string, UserEntry>();
  private readonly sessions = new Map<string, SessionEntry>();
  private readonly attempts: AttemptTable;
  private readonly seen = new Map<string, ClientSeen>();
  private readonly roleLists = new Map<string, readonly string[]>();

  private readonly serviceAccounts: MemoryServiceAccounts;
  /** Enabled admins, users and service accounts together (the last-admin rule). */
  private readonly admins = new AdminSet();
  /** The last version given to any user's secrets document (versions never repeat). */
  private secretsVersion = 0;
  /** Registration counters: a few per client address (see RateTable). */
  private readonly rates = new RateTable(100_000);

  constructor(private readonly options: MemoryStoreOptions) {
    this.attempts = new AttemptTable(options.maxAttemptEntries);
    this.serviceAccounts = new MemoryServiceAccounts(options.clock, options.maxAssertions ?? 100_000, this.admins);
  }

  async readUserSecrets(userId: string): Promise<UserSecretsRecord | undefined> {
    return this.byId.get(userId)?.secrets;
  }

  async writeUserSecrets(userId: string, ifVersion: number, data: string | undefined): Promise<'written' | 'conflict' | 'user_gone'> {
    const entry = this.byId.get(userId);
    if (!entry) return 'user_gone';
    if ((entry.secrets?.version ?? 0) !== ifVersion) return 'conflict';
    // One sequence for the whole store: a user made again with a deleted one's id starts past it.
    entry.secrets = data === undefined ? undefined : { version: ++this.secretsVersion, data };
    return 'written';
  }

  async hitRate(key: string, limit: number, windowMs: number): Promise<{ allowed: boolean; retryAfterMs: number }> {
    return this.rates.hit(key, limit, windowMs, this.now());
  }

  // --- service accounts (see MemoryServiceAccounts) ----------------------------------------

  createServiceAccount(account: { id: string; name: string; roles: readonly string[]; credential: NewCredential }): Promise<'created' | 'exists'> {
    return this.serviceAccounts.createServiceAccount(account);
  }

  getServiceAccount(id: string): Promise<ServiceAccountRecord | undefined> {
    return this.serviceAccounts.getServiceAccount(id);
  }

  listServiceAccounts(query: UserQuery): Promise<ServiceAccountRecord[]> {
    return this.serviceAccounts.listServiceAccounts(query);
  }

  updateServiceAccount(id: string, change: ServiceAccountChange): Promise<ServiceAccountUpdate> {
    return this.serviceAccounts.updateServiceAccount(id, change);
  }

  deleteServiceAccount(id: string, options?: { readonly keepAnAdmin?: boolean }): Promise<boolean | 'last_admin'> {
    return this.serviceAccounts.deleteServiceAccount(id, options);
  }

  liveCredential(serviceAccountId: string, credentialId: string): Promise<LiveUser | undefined> {
    return this.serviceAccounts.liveCredential(serviceAccountId, credentialId);
  }

  useAssertion(serviceAccountId: string, jti: string, expiresAt: number): Promise<boolean> {
    return this.serviceAccounts.useAssertion(serviceAccountId, jti, expiresAt);
  }

  private now(): number {
    return this.options.clock.now();
  }

  // --- users ------------------------------------------------------------------------------

  async createUser(user: NewUser, claims?: { readonly skeleton: string }): Promise<'created' | 'exists' | 'confusable'> {
    if (this.byName.has(user.username) || this.byId.has(user.id)) return 'exists';
    if (claims && this.bySkeleton.has(claims.skeleton)) return 'confusable';
    const now = this.now();
    const entry = new UserEntry(Object.freeze({ ...user, roles: this.rolesOf(user.roles), createdAt: now, passwordChangedAt: now, generation: 0, revision: 1 }));
    if (claims) {
      entry.skeleton = claims.skeleton;
      this.bySkeleton.set(claims.skeleton, entry);
    }
    this.byId.set(user.id, entry);
    this.byName.set(user.username, entry);
    this.admins.note(user.id, entry.record);
    return 'created';
  }

  async findUserByUsername(username: string): Promise<UserRecord | undefined> {
    return this.byName.get(username)?.record;
  }

  async getUser(userId: string): Promise<UserRecord | undefined> {
    return this.byId.get(userId)?.record;
  }

  async listUsers(query: UserQuery): Promise<UserRecord[]> {
    const out: UserRecord[] = [];
    const start = query.after !== undefined && query.after >= query.prefix ? query.after : query.prefix;
    for (const [name, entry] of this.byName.entries(start)) {
      if (!name.startsWith(query.prefix) || out.length >= query.limit) break;
      if (name !== query.after) out.push(entry.record);
    }
    return out;
  }

  async updateUser(userId: string, change: UserChange): Promise<UpdateResult> {
    const entry = this.byId.get(userId);
    if (!entry) return { outcome: 'not_found' };
    const current = entry.record;
    if (change.ifRevision !== undefined && change.ifRevision !== current.revision) return { outcome: 'conflict' };
    if (mayDemote(change) && this.admins.refuses(userId, change.keepAnAdmin)) return { outcome: 'last_admin' };
    const generation = change.revokeSessions ? current.generation + 1 : current.generation;
    entry.replace(
      Object.freeze({
        ...current,
        ...(change.roles ? { roles: this.rolesOf(change.roles) } : {}),
        ...(change.passwordHash !== undefined ? { passwordHash: change.passwordHash, passwordChangedAt: this.now() } : {}),
        ...(change.disabled !== undefined ? { disabled: change.disabled } : {}),
        ...(change.fileDigest !== undefined ? { fileDigest: change.fileDigest } : {}),
        generation,
        revision: current.revision + 1,
      }),
    );
    if (change.keepSession !== undefined) {
      const kept = this.sessions.get(change.keepSession);
      // The calling session moves to the new generation in the same step: it never lapses.
      if (kept && kept.user === entry) kept.userGeneration = generation;
    }
    this.admins.note(userId, entry.record);
    return { outcome: 'updated', user: entry.record };
  }

  async fileUserIds(): Promise<string[]> {
    return [...this.byId.values()].filter((u) => u.record.origin === 'file').map((u) => u.record.id);
  }

  async deleteUser(userId: string, options: { readonly keepAnAdmin?: boolean } = {}): Promise<UserRecord | undefined | 'last_admin'> {
    const entry = this.byId.get(userId);
    if (!entry) return undefined;
    if (this.admins.refuses(userId, options.keepAnAdmin)) return 'last_admin';
    this.admins.note(userId, undefined);
    entry.deleted = true;
    this.byId.delete(userId);
    this.byName.delete(entry.record.username);
    if (entry.skeleton !== undefined) this.bySkeleton.delete(entry.skeleton);
    for (let s = entry.head; s; s = s.next) this.sessions.delete(s.id);
    entry.head = undefined;
    return entry.record;
  }

  // --- sessions ---------------------------------------------------------------------------

  async createSession(req: NewSession): Promise<CreateSessionResult> {
    const user = this.byId.get(req.userId);
    if (!user) return { outcome: 'refused', why: 'user_gone' };
    if (user.record.disabled) return { outcome: 'refused', why: 'disabled' };
    if (user.record.generation > req.userGeneration) return { outcome: 'refused', why: 'revoked' };
    const now = this.now();
    // Ended sessions leave the user's list here; past the cap the oldest active one ends.
    let active = 0;
    let oldest: SessionEntry | undefined;
    this.pruneSessions(user, now, (s) => {
      active++;
      oldest = s;
    });
    if (active >= this.options.maxSessionsPerUser && oldest) this.removeSession(oldest);
    const expiresAt = now + req.sessionMaxAgeMs;
    const session = new SessionEntry(
      req.sessionId,
      user,
      user.record.generation,
      this.seenOf(req.clientAddress, req.userAgent),
      req.refreshHash,
      now,
      expiresAt,
      Math.min(now + req.refreshTtlMs, expiresAt),
      sharedAmr(req.amr.join(' ')),
    );
    session.next = user.head;
    user.head = session;
    this.sessions.set(req.sessionId, session);
    return { outcome: 'created', user: user.record, ...session.times(now) };
  }

  async rotateRefreshToken(req: RotateRequest): Promise<RotateResult> {
    const now = this.now();
    const session = this.sessionOf(req.userId, req.sessionId);
    if (!session) return { outcome: 'invalid', why: 'unknown' };
    if (!session.active(now, this.options.accessGraceMs)) {
      const user = session.user;
      return { outcome: 'invalid', why: user.deleted || user.record.disabled || session.userGeneration < user.record.generation ? 'revoked' : 'expired' };
    }
    if (req.generation === session.generation) {
      if (req.hash !== session.tokenHash) return { outcome: 'invalid', why: 'unknown' };
      if (now >= session.tokenExpiresAt) return { outcome: 'invalid', why: 'expired' };
      session.previous = { hash: req.hash, rotatedAt: now, sealed: req.sealedSuccessor };
      session.generation = req.generation + 1;
      session.tokenHash = req.successorHash;
      session.tokenExpiresAt = Math.min(now + req.refreshTtlMs, session.expiresAt);
      session.lastRefreshedSeconds = Math.floor(now / 1000);
      return { outcome: 'rotated', user: session.user.record, ...session.times(now) };
    }
    if (req.generation > session.generation) return { outcome: 'invalid', why: 'unknown' };
    const previous = session.previous;
    if (req.generation === session.generation - 1 && previous && now - previous.rotatedAt <= req.reuseIntervalMs) {
      if (previous.hash !== req.hash) return { outcome: 'invalid', why: 'unknown' };
      return { outcome: 'retried', user: session.user.record, sealedSuccessor: previous.sealed, ...session.times(now) };
    }
    // Only a tag the service holds proves this old token was ever issued.
    if (!req.tagged) return { outcome: 'invalid', why: 'unknown' };
    // An older generation, or the previous one past the interval: the token was stolen or leaked.
    this.removeSession(session);
    return { outcome: 'reused', sessionId: req.sessionId, userId: req.userId };
  }

  async revokeSessionByRefreshToken(token: ParsedRefreshToken): Promise<{ sessionId: string; userId: string } | undefined> {
    const session = this.sessionOf(token.userId, token.sessionId);
    if (!session || token.generation > session.generation) return undefined;
    if (token.generation === session.generation ? token.hash !== session.tokenHash : !token.tagged) return undefined;
    this.removeSession(session);
    return { sessionId: token.sessionId, userId: token.userId };
  }

  async liveSession(userId: string, sessionId: string): Promise<LiveUser | undefined> {
    const session = this.sessions.get(sessionId);
    return session !== undefined && session.user.record.id === userId && session.active(this.now(), this.options.accessGraceMs) ? session.user.record : undefined;
  }

  async listSessions(userId: string): Promise<SessionInfo[]> {
    const user = this.byId.get(userId);
    const out: SessionInfo[] = [];
    if (user) this.pruneSessions(user, this.now(), (s) => out.push(s.info()));
    return out;
  }

  async revokeSession(userId: string, sessionId: string): Promise<boolean> {
    const session = this.sessionOf(userId, sessionId);
    if (!session || !session.active(this.now(), this.options.accessGraceMs)) return false;
    this.removeSession(session);
    return true;
  }

  private sessionOf(userId: string, sessionId: string): SessionEntry | undefined {
    const session = this.sessions.get(sessionId);
    return session !== undefined && session.user.record.id === userId ? session : undefined;
  }

  private removeSession(session: SessionEntry): void {
    this.sessions.delete(session.id);
    // Unlinked from its user's list the next time that list is walked.
  }

  /** Walks a user's list: ended sessions leave the list (and the map); `each` sees the active ones. */
  private pruneSessions(user: UserEntry, now: number, each: (s: SessionEntry) => void): void {
    let previous: SessionEntry | undefined;
    for (let s = user.head; s; s = s.next) {
      const present = this.sessions.get(s.id) === s;
      if (present && s.active(now, this.options.accessGraceMs)) {
        each(s);
        previous = s;
        continue;
      }
      if (present) this.sessions.delete(s.id);
      if (previous) previous.next = s.next;
      else user.head = s.next;
    }
  }

  /** One frozen array per distinct role list: most users share a handful of them. */
  private rolesOf(roles: readonly string[]): readonly string[] {
    const key = roles.join(',');
    let shared = this.roleLists.get(key);
    if (!shared) {
      shared = Object.freeze([...roles]);
      if (this.roleLists.size < SHARED_ROLE_LISTS) this.roleLists.set(key, shared);
    }
    return shared;
  }

  private seenOf(address: string, userAgent: string): ClientSeen {
    const key = `${address}\0${userAgent}`;
    let seen = this.seen.get(key);
    if (!seen) {
      seen = Object.freeze({ address, userAgent });
      if (this.seen.size < SEEN_CACHE) this.seen.set(key, seen);
    }
    return seen;
  }

  // --- login attempts ---------------------------------------------------------------------

  async checkAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    const now = this.now();
    return checkRule(this.attempts.get(key, now), now, policy);
  }

  async beginAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    const now = this.now();
    const { grant, next } = beginRule(this.attempts.get(key, now), now, policy);
    if (next) this.attempts.put(key, next, policy);
    return grant;
  }

  async endAttempt(key: string, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void> {
    const now = this.now();
    const next = endRule(this.attempts.get(key, now), now, policy, outcome);
    if (next === null) this.attempts.delete(key);
    else if (next) this.attempts.put(key, next, policy);
  }

  async recordFailure(key: string, policy: BackoffPolicy): Promise<void> {
    const now = this.now();
    this.attempts.put(key, recordRule(this.attempts.get(key, now), now, policy), policy);
  }

  async resetAttempts(key: string): Promise<void> {
    this.attempts.delete(key);
  }

  // --- lifecycle and upkeep ---------------------------------------------------------------

  async connect(): Promise<void> {}

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  /** Drops sessions whose last access token has expired, and expired attempt counters. */
  sweep(now: number): { sessions: number } {
    let sessions = 0;
    for (const [id, s] of this.sessions) {
      if (!s.active(now, this.options.accessGraceMs)) {
        this.sessions.delete(id);
        sessions++;
      } else if (s.previous && now - s.previous.rotatedAt > MAX_REUSE_INTERVAL_MS) {
        // Past any reuse interval, the previous token is only re-use: its tag says so alone.
        s.previous = undefined;
      }
    }
    for (const user of this.byId.values()) if (user.head) this.pruneSessions(user, now, () => {});
    this.attempts.sweep(now);
    this.serviceAccounts.sweep(now);
    this.rates.sweep(now);
    return { sessions };
  }

  /** Entry counts, for tests, metrics and the state budget. */
  size(): { users: number; sessions: number; attempts: number; rates: number } {
    return { users: this.byId.size, sessions: this.sessions.size, attempts: this.attempts.size, rates: this.rates.size };
  }
}

/** AUTH_REFRESH_REUSE_INTERVAL's upper bound. */
const MAX_REUSE_INTERVAL_MS = 300_000;
