import { AuthError } from '../errors.js';
import { canonicalUsername, checkLoginFields, checkQueryText, isPlainText, validateNewUsername, validateRoles } from './credentials.js';
import type { FlowContext } from './events.js';
import { isId } from './ids.js';
import type { LoginThrottle } from './login-throttle.js';
import type { PasswordHasher } from './password-hasher.js';
import type { SessionInfo, UserRecord } from './records.js';
import { checkNewPassword, createUser, type NewPasswordPolicy, type RegisterDeps, type UserStore } from './register.js';

/** A change to a user, applied atomically with what it implies for the user's sessions. */
export interface UserChange {
  readonly roles?: readonly string[];
  /** A new password hash; the store stamps `passwordChangedAt`. */
  readonly passwordHash?: string;
  readonly disabled?: boolean;
  /** Ends every session of the user (their generation moves on)… */
  readonly revokeSessions?: boolean;
  /** …except this one, which stays (ChangePassword, RevokeOtherSessions). */
  readonly keepSession?: string;
  /** For file users: the digest of their line as now seeded. */
  readonly fileDigest?: string;
  /** Refuse unless the user is still at this revision (nothing changed since it was read). */
  readonly ifRevision?: number;
  /**
   * Refuse (outcome `last_admin`, nothing changed) a change that would leave no enabled admin,
   * users and service accounts counted together: atomically, on every instance.
   */
  readonly keepAnAdmin?: boolean;
}

/** The role AdminService requires (declared in the proto). */
export const ADMIN_ROLE = 'admin';
/** Why a change that would leave nobody able to administer the service is refused. */
export const LAST_ADMIN = 'that would leave no enabled admin; make another admin first';

/** Whether a user or service account record can administer the service. */
export function isEnabledAdmin(record: { readonly roles: readonly string[]; readonly disabled: boolean }): boolean {
  return !record.disabled && record.roles.includes(ADMIN_ROLE);
}

/**
 * The refusal of a change that would leave no enabled admin: a security event at warn (someone
 * tried to take away the last way to administer the service), and the error to throw.
 */
export function lastAdminKept(ctx: FlowContext, target: { readonly userId: string } | { readonly serviceAccountId: string }, change: 'roles' | 'disabled' | 'deleted'): AuthError {
  ctx.log.warn({ event: 'last_admin_kept', ...target, actorId: ctx.principal?.userId, change }, 'refused: the change would leave no enabled admin');
  return new AuthError('failed_precondition', LAST_ADMIN);
}

/** Whether `change` may take the admin role away (so the last-admin rule must be asked). */
export function mayDemote(change: { readonly roles?: readonly string[]; readonly disabled?: boolean }): boolean {
  return (change.roles !== undefined && !change.roles.includes(ADMIN_ROLE)) || change.disabled === true;
}

export type UpdateResult = { readonly outcome: 'updated'; readonly user: UserRecord } | { readonly outcome: 'not_found' | 'conflict' | 'last_admin' };

/** A page of users in username order: those after `after`, starting with `prefix`. */
export interface UserQuery {
  readonly prefix: string;
  readonly after: string | undefined;
  readonly limit: number;
}

/** The accounts port: users by id, listed in order, changed and deleted atomically; a user's sessions. */
export interface AccountStore extends UserStore {
  getUser(userId: string): Promise<UserRecord | undefined>;
  listUsers(query: UserQuery): Promise<UserRecord[]>;
  updateUser(userId: string, change: UserChange): Promise<UpdateResult>;
  /** Deletes the user and every session of theirs; returns what was deleted. `keepAnAdmin` as in UserChange. */
  deleteUser(userId: string, options?: { readonly keepAnAdmin?: boolean }): Promise<UserRecord | undefined | 'last_admin'>;
  /** The user's active sessions, newest first. */
  listSessions(userId: string): Promise<SessionInfo[]>;
  /** Ends one session of the user; false when the user has no such active session. */
  revokeSession(userId: string, sessionId: string): Promise<boolean>;
}

/** Checks a user's password as Login does; returns the user, throws the one refusal otherwise. */
export interface PasswordCheck {
  checkPassword(rawUsername: string, rawPassword: string, ctx: FlowContext): Promise<UserRecord>;
}

export interface AccountDeps extends RegisterDeps {
  readonly users: AccountStore;
  readonly hasher: PasswordHasher;
  /** The password check of Login (SessionFlows.checkPassword): throttled, one answer for every failure. */
  readonly sessions: PasswordCheck;
  readonly throttle: LoginThrottle;
}

/** AIP-158: a page holds at most this many users, and this many when the caller names none. */
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;

const NO_SESSION = 'session not found';
const NO_USER = 'user not found';

function actorOf(ctx: FlowContext): { userId: string; sessionId: string; roles: readonly string[] } {
  if (!ctx.principal) throw new AuthError('unauthenticated', 'missing bearer token');
  return ctx.principal;
}

/** The caller of a self-service RPC: a user (a service account has no account of this kind). */
function selfOf(ctx: FlowContext): { userId: string; sessionId: string; roles: readonly string[] } {
  const actor = actorOf(ctx);
  if (ctx.principal?.subjectType === 'service_account') throw new AuthError('failed_precondition', 'AccountService is for users; an admin manages service accounts');
  return actor;
}

/** Self-service: every operation acts on the caller's own account, named by their access token. */
export class AccountFlows {
  constructor(
    private readonly deps: AccountDeps,
    private readonly policy: NewPasswordPolicy,
  ) {}

  async getAccount(ctx: FlowContext): Promise<UserRecord> {
    const user = await this.deps.users.getUser(selfOf(ctx).userId);
    if (!user) throw new AuthError('not_found', NO_USER);
    return user;
  }

  /**
   * Checks the current password (throttled and counted like a login), applies the password
   * policy to the new one, and ends every other session of the user in the same store operation;
   * the calling session stays.
   */
  async changePassword(currentPassword: string, newPassword: string, ctx: FlowContext): Promise<void> {
    const actor = selfOf(ctx);
    checkLoginFields('-', currentPassword);
    const user = await this.getAccount(ctx);
    const password = checkNewPassword(newPassword, user.username, this.policy);
    const checked = await this.deps.sessions.checkPassword(user.username, currentPassword, ctx);
    const passwordHash = await this.deps.hasher.hash(password);
    const result = await this.deps.users.updateUser(user.id, { passwordHash, revokeSessions: true, keepSession: actor.sessionId, ifRevision: checked.revision });
    if (result.outcome !== 'updated') throw new AuthError('conflict', 'the account changed meanwhile; try again');
    ctx.log.info({ event: 'password_changed', userId: user.id, actorId: actor.userId }, 'password changed; other sessions ended');
  }

  async listSessions(ctx: FlowContext): Promise<{ sessions: SessionInfo[]; current: string }> {
    const actor = selfOf(ctx);
    return { sessions: await this.deps.users.listSessions(actor.userId), current: actor.sessionId };
  }

  /** Ends one of the caller's sessions; an unknown session and another user's get the same NOT_FOUND. */
  async revokeSession(sessionId: string, ctx: FlowContext): Promise<void> {
    const actor = selfOf(ctx);
    if (!isId(sessionId, 'ses') || !(await this.deps.users.revokeSession(actor.userId, sessionId))) throw new AuthError('not_found', NO_SESSION);
    ctx.log.warn({ event: 'session_revoked', userId: actor.userId, sessionId, actorId: actor.userId, reason: 'revoked_by_user' }, 'session revoked');
  }

  /** "Sign out everywhere else": the calling session stays. */
  async revokeOtherSessions(ctx: FlowContext): Promise<void> {
    const actor = selfOf(ctx);
    const result = await this.deps.users.updateUser(actor.userId, { revokeSessions: true, keepSession: actor.sessionId });
    if (result.outcome !== 'updated') throw new AuthError('not_found', NO_USER);
    ctx.log.warn({ event: 'sessions_revoked', userId: actor.userId, actorId: actor.userId, scope: 'others' }, 'other sessions revoked');
  }
}

/** The administration of users: every operation needs the admin role (declared in the proto). */
export class AdminFlows {
  constructor(
    private readonly deps: AccountDeps,
    private readonly policy: NewPasswordPolicy,
  ) {}

  async createUser(input: { username: string; password: string; roles: readonly string[] }, ctx: FlowContext): Promise<UserRecord> {
    const actor = actorOf(ctx);
    const { userId } = await createUser(this.deps, this.policy, input);
    ctx.log.info({ event: 'user_created', userId, actorId: actor.userId }, 'user created');
    return this.mustGet(userId);
  }

  /** A user by id or by username (exactly one of them). */
  async getUser(by: { userId: string; username: string }): Promise<UserRecord> {
    if ((by.userId === '') === (by.username === '')) throw new AuthError('invalid_argument', 'give exactly one of user_id and username');
    if (by.userId !== '') return this.mustGet(by.userId);
    const name = canonicalUsername(by.username);
    const user = name === undefined ? undefined : await this.deps.users.findUserByUsername(name);
    if (!user) throw new AuthError('not_found', NO_USER);
    return user;
  }

  /**
   * AIP-158 paging in username order: at most MAX_PAGE_SIZE a page, an opaque token naming where
   * the next page starts (and for which prefix). The store reads only the page, never the whole set.
   */
  async listUsers(request: { pageSize: number; pageToken: string; usernamePrefix: string }): Promise<{ users: UserRecord[]; nextPageToken: string }> {
    const page = await this.page(request.pageSize, request.pageToken, { field: 'username_prefix', value: request.usernamePrefix }, (q) => this.deps.users.listUsers(q), (u) => u.username);
    return { users: page.items, nextPageToken: page.nextPageToken };
  }

  /** One AIP-158 page of anything listed in name order (users, service accounts). */
  async page<T>(
    pageSize: number,
    token: string,
    rawPrefix: { readonly field: string; readonly value: string },
    list: (q: UserQuery) => Promise<T[]>,
    nameOf: (item: T) => string,
  ): Promise<{ items: T[]; nextPageToken: string }> {
    if (pageSize < 0) throw new AuthError('invalid_argument', 'page_size must not be negative');
    const limit = Math.min(pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize, MAX_PAGE_SIZE);
    if (rawPrefix.value.length > 256) throw new AuthError('invalid_argument', `${rawPrefix.field} must be at most 64 characters`);
    checkQueryText(rawPrefix.field, rawPrefix.value);
    const prefix = rawPrefix.value === '' ? '' : rawPrefix.value.normalize('NFKC').toLowerCase();
    if (prefix.length > 64) throw new AuthError('invalid_argument', `${rawPrefix.field} must be at most 64 characters`);
    const after = token === '' ? undefined : readPageToken(token, prefix);
    // One more than the page, to know whether another page follows.
    const items = await list({ prefix, after, limit: limit + 1 });
    const page = items.slice(0, limit);
    return { items: page, nextPageToken: items.length > limit ? pageToken(nameOf(page[page.length - 1]!), prefix) : '' };
  }

  async setRoles(userId: string, roles: readonly string[], ctx: FlowContext): Promise<UserRecord> {
    const actor = actorOf(ctx);
    const valid = validateRoles(roles);
    mustBeUserId(userId);
    if (userId === actor.userId && !valid.includes(ADMIN_ROLE)) throw new AuthError('failed_precondition', 'an admin cannot take the admin role from themselves');
    const user = this.updated(await this.deps.users.updateUser(userId, { roles: valid, keepAnAdmin: true }), () => lastAdminKept(ctx, { userId }, 'roles'));
    ctx.log.info({ event: 'roles_changed', userId, actorId: actor.userId, roles: valid }, 'roles changed');
    return user;
  }

  /** Sets a new password (the policy applies) and ends every session of the user. */
  async setPassword(userId: string, newPassword: string, ctx: FlowContext): Promise<void> {
    const actor = actorOf(ctx);
    const user = await this.mustGet(userId);
    const password = checkNewPassword(newPassword, user.username, this.policy);
    const passwordHash = await this.deps.hasher.hash(password);
    this.updated(await this.deps.users.updateUser(userId, { passwordHash, revokeSessions: true }));
    ctx.log.warn({ event: 'password_reset', userId, actorId: actor.userId }, 'password reset; sessions ended');
  }

  async disableUser(userId: string, ctx: FlowContext): Promise<UserRecord> {
    const actor = actorOf(ctx);
    if (userId === actor.userId) throw new AuthError('failed_precondition', 'an admin cannot disable themselves');
    mustBeUserId(userId);
    const user = this.updated(await this.deps.users.updateUser(userId, { disabled: true, revokeSessions: true, keepAnAdmin: true }), () => lastAdminKept(ctx, { userId }, 'disabled'));
    ctx.log.warn({ event: 'user_disabled', userId, actorId: actor.userId }, 'user disabled; sessions ended');
    return user;
  }

  async enableUser(userId: string, ctx: FlowContext): Promise<UserRecord> {
    const actor = actorOf(ctx);
    mustBeUserId(userId);
    const user = this.updated(await this.deps.users.updateUser(userId, { disabled: false }));
    ctx.log.info({ event: 'user_enabled', userId, actorId: actor.userId }, 'user enabled');
    return user;
  }

  async deleteUser(userId: string, ctx: FlowContext): Promise<void> {
    const actor = actorOf(ctx);
    if (userId === actor.userId) throw new AuthError('failed_precondition', 'an admin cannot delete themselves');
    const deleted = isId(userId, 'usr') ? await this.deps.users.deleteUser(userId, { keepAnAdmin: true }) : undefined;
    if (deleted === 'last_admin') throw lastAdminKept(ctx, { userId }, 'deleted');
    if (!deleted) throw new AuthError('not_found', NO_USER);
    ctx.log.warn({ event: 'user_deleted', userId, actorId: actor.userId }, 'user deleted; sessions ended');
  }

  async listUserSessions(userId: string): Promise<SessionInfo[]> {
    await this.mustGet(userId);
    return this.deps.users.listSessions(userId);
  }

  async revokeUserSessions(userId: string, ctx: FlowContext): Promise<void> {
    const actor = actorOf(ctx);
    mustBeUserId(userId);
    this.updated(await this.deps.users.updateUser(userId, { revokeSessions: true }));
    ctx.log.warn({ event: 'sessions_revoked', userId, actorId: actor.userId, scope: 'all' }, 'every session of the user revoked');
  }

  /** Lets a locked-out user in again: forgets the failed logins counted against the username. */
  async resetLoginThrottle(rawUsername: string, ctx: FlowContext): Promise<void> {
    const actor = actorOf(ctx);
    const username = validateNewUsername(rawUsername);
    await this.deps.throttle.reset(username);
    const user = await this.deps.users.findUserByUsername(username);
    ctx.log.info({ event: 'login_throttle_reset', actorId: actor.userId, ...(user ? { userId: user.id } : {}) }, 'login throttle reset');
  }

  private async mustGet(userId: string): Promise<UserRecord> {
    const user = isId(userId, 'usr') ? await this.deps.users.getUser(userId) : undefined;
    if (!user) throw new AuthError('not_found', NO_USER);
    return user;
  }

  /** The user a change left; `lastAdmin` makes the refusal of a change the last-admin rule was asked for. */
  private updated(result: UpdateResult, lastAdmin: () => AuthError = () => new AuthError('failed_precondition', LAST_ADMIN)): UserRecord {
    if (result.outcome === 'updated') return result.user;
    if (result.outcome === 'not_found') throw new AuthError('not_found', NO_USER);
    if (result.outcome === 'last_admin') throw lastAdmin();
    throw new AuthError('conflict', 'the user changed meanwhile; try again');
  }
}

/** Every user id an admin names is checked before the store sees it: anything else is no user. */
function mustBeUserId(userId: string): void {
  if (!isId(userId, 'usr')) throw new AuthError('not_found', NO_USER);
}

function pageToken(after: string, prefix: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after, prefix })).toString('base64url');
}

function readPageToken(token: string, prefix: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const t = parsed as { v?: unknown; after?: unknown; prefix?: unknown } | undefined;
  if (typeof t !== 'object' || t === null || t.v !== 1 || typeof t.after !== 'string' || t.after.length > 256 || !isPlainText(t.after)) throw new AuthError('invalid_argument', 'page_token is not valid');
  if (t.prefix !== prefix) throw new AuthError('invalid_argument', 'page_token belongs to another prefix');
  return t.after;
}
