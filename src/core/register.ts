import { AuthError } from '../errors.js';
import type { Random } from '../random.js';
import { checkUsernameScripts, usernameSkeleton, validateNewPassword, validateNewUsername, validateRoles, type PasswordPolicy } from './credentials.js';
import type { FlowContext } from './events.js';
import { addressOf } from './login-throttle.js';
import { newId } from './ids.js';
import type { PasswordDenylist } from './password-denylist.js';
import type { PasswordHasher } from './password-hasher.js';
import type { NewUser, UserRecord } from './records.js';

/** The users port of registration: users by name, created atomically unique. */
export interface UserStore {
  /**
   * Adds the user unless the username is taken, or (`skeleton` given) another user holds that
   * skeleton ('confusable': a look-alike of their name); atomic. Deleting the user frees both.
   */
  createUser(user: NewUser, claims?: { readonly skeleton: string }): Promise<'created' | 'exists' | 'confusable'>;
  findUserByUsername(username: string): Promise<UserRecord | undefined>;
}

export interface NewPasswordPolicy extends PasswordPolicy {
  readonly denylist: PasswordDenylist;
}

/** Applies the password policy to a new password of `username`; returns its NFKC form. */
export function checkNewPassword(rawPassword: string, username: string, policy: NewPasswordPolicy): string {
  const password = validateNewPassword(rawPassword, policy);
  if (policy.denylist.refuses(password)) throw new AuthError('invalid_argument', 'password is too common; choose another');
  if (password.toLowerCase() === username) throw new AuthError('invalid_argument', 'password must not be the username');
  return password;
}

export interface RegisterOptions extends NewPasswordPolicy {
  readonly registration: 'open' | 'closed';
  /** Registrations one client address may make a window. */
  readonly perAddress: { readonly limit: number; readonly windowMs: number };
  /** Registrations all addresses together may make a window: the ceiling a botnet meets. */
  readonly overall: { readonly limit: number; readonly windowMs: number };
}

/** The rate port: a fixed-window counter per key, on the store's clock. */
export interface RateStore {
  /** Counts one hit on `key` in the current window of `windowMs`; refuses past `limit` with the wait. */
  hitRate(key: string, limit: number, windowMs: number): Promise<{ readonly allowed: boolean; readonly retryAfterMs: number }>;
}

export interface RegisterDeps {
  readonly users: UserStore;
  readonly hasher: PasswordHasher;
  readonly random: Random;
}

/**
 * Self-service registration. New users get no roles: an admin grants them (or the users file).
 * Registrations are rate-limited per client address and overall, before any hashing, and their
 * hashing has its own small share of the threads (see Argon2Hasher), so a flood of Register
 * cannot starve Login.
 */
export class RegisterFlow {
  constructor(
    private readonly deps: RegisterDeps & { readonly rates: RateStore },
    private readonly options: RegisterOptions,
  ) {}

  async register(rawUsername: string, rawPassword: string, ctx: FlowContext): Promise<{ userId: string }> {
    if (this.options.registration === 'closed') {
      throw new AuthError('registration_closed', 'registration is closed on this server');
    }
    const { perAddress, overall } = this.options;
    const address = addressOf(ctx);
    for (const [key, rule] of [...(address ? [[`reg:${address}`, perAddress] as const] : []), ['reg:all', overall] as const]) {
      const hit = await this.deps.rates.hitRate(key, rule.limit, rule.windowMs);
      if (!hit.allowed) {
        const seconds = Math.max(1, Math.ceil(hit.retryAfterMs / 1000));
        ctx.log.warn({ event: 'register_throttled', scope: key === 'reg:all' ? 'overall' : 'address' }, 'registration throttled');
        throw new AuthError('throttled', `too many registrations; retry in ${seconds} s`, { retryAfterSeconds: seconds });
      }
    }
    const { userId } = await createUser(this.deps, this.options, { username: rawUsername, password: rawPassword, roles: [] });
    ctx.log.info({ event: 'user_registered', userId }, 'user registered');
    return { userId };
  }
}

/** Validates and creates a user (Register, and an admin's CreateUser); `already_exists` when the name is taken. */
export async function createUser(
  deps: RegisterDeps,
  policy: NewPasswordPolicy,
  input: { readonly username: string; readonly password: string; readonly roles: readonly string[] },
): Promise<{ userId: string }> {
  const username = validateNewUsername(input.username);
  checkUsernameScripts(username);
  const password = checkNewPassword(input.password, username, policy);
  const { users, hasher, random } = deps;
  // Checked before hashing so a taken name costs no hash; createUser re-checks atomically.
  if (await users.findUserByUsername(username)) throw alreadyExists();
  const roles = validateRoles(input.roles);
  const user: NewUser = { id: newId(random, 'usr'), username, passwordHash: await hasher.hash(password), roles, disabled: false, origin: 'api' };
  const created = await users.createUser(user, { skeleton: usernameSkeleton(username) });
  if (created === 'exists') throw alreadyExists();
  if (created === 'confusable') throw new AuthError('already_exists', 'username looks like one already taken; choose another');
  return { userId: user.id };
}

function alreadyExists(): AuthError {
  return new AuthError('already_exists', 'username is already taken');
}
