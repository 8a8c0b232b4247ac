import type { Clock } from '../clock.js';
import { AuthError } from '../errors.js';
import type { Random } from '../random.js';
import { type PasswordPolicy, validateNewPassword, validateNewUsername } from './credentials.js';
import type { FlowContext } from './events.js';
import { newId } from './ids.js';
import type { PasswordDenylist } from './password-denylist.js';
import type { PasswordHasher } from './password-hasher.js';
import type { UserRecord } from './records.js';

/** The users port: the flows read users by name and create them, atomically unique. */
export interface UserStore {
  /** Adds the user unless the username is taken; atomic. */
  createUser(user: UserRecord): Promise<'created' | 'exists'>;
  findUserByUsername(username: string): Promise<UserRecord | undefined>;
}

export interface RegisterOptions extends PasswordPolicy {
  readonly registration: 'open' | 'closed';
  readonly denylist: PasswordDenylist;
}

export interface RegisterDeps {
  readonly users: UserStore;
  readonly hasher: PasswordHasher;
  readonly clock: Clock;
  readonly random: Random;
}

/** Self-service registration. New users get no roles: roles come from the users file. */
export class RegisterFlow {
  constructor(
    private readonly deps: RegisterDeps,
    private readonly options: RegisterOptions,
  ) {}

  async register(rawUsername: string, rawPassword: string, ctx: FlowContext): Promise<{ userId: string }> {
    if (this.options.registration === 'closed') {
      throw new AuthError('registration_closed', 'registration is closed on this server');
    }
    const username = validateNewUsername(rawUsername);
    const password = validateNewPassword(rawPassword, this.options);
    if (this.options.denylist.refuses(password)) throw new AuthError('invalid_argument', 'password is too common; choose another');
    if (password.toLowerCase() === username) throw new AuthError('invalid_argument', 'password must not be the username');
    const { users, hasher, clock, random } = this.deps;
    // Checked before hashing so a taken name costs no hash; createUser re-checks atomically.
    if (await users.findUserByUsername(username)) throw alreadyExists();
    const user = { id: newId(random, 'usr'), username, passwordHash: await hasher.hash(password), roles: [], createdAt: clock.now() };
    if ((await users.createUser(user)) === 'exists') throw alreadyExists();
    ctx.log.info({ event: 'user_registered', userId: user.id }, 'user registered');
    return { userId: user.id };
  }
}

function alreadyExists(): AuthError {
  return new AuthError('already_exists', 'username is already taken');
}
