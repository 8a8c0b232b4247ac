import type { UpdateResult, UserChange, UserQuery } from '../../core/accounts.js';
import type { NewUser, UserRecord } from '../../core/records.js';
import { NAME_SEPARATOR, RedisBase, type Args, type RedisClient, type Script } from './base.js';
import { CLOCK, SESSION_KEY } from './lua.js';
import { fieldsOf, userOf } from './records.js';

/** KEYS: user. ARGV: now, id, username, passwordHash, roles, disabled, origin, fileDigest, skeleton. Returns 1 when created, 0 when the id exists, -1 when late. */
const CREATE_USER = `${CLOCK}
if late() then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = now()
redis.call('HSET', KEYS[1], 'n', ARGV[3], 'ph', ARGV[4], 'ro', ARGV[5], 'd', ARGV[6], 'o', ARGV[7], 'fd', ARGV[8], 'c', t, 'pc', t, 'g', 0, 'rv', 1)
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'k', ARGV[9]) end
return 1
`;

/**
 * KEYS: user, kept session (or the user key again). ARGV: now, ifRevision ('' = any), roles ('' =
 * keep), passwordHash ('' = keep), disabled ('' = keep), revoke ('1' = every session ends),
 * fileDigest ('' = keep).
 * Returns 'not_found' | 'conflict' | the user's fields (HGETALL).
 */
const UPDATE_USER = `${CLOCK}
if late() then return 'late' end
local u = redis.call('HMGET', KEYS[1], 'rv', 'g')
if not u[1] then return 'not_found' end
if ARGV[2] ~= '' and ARGV[2] ~= u[1] then return 'conflict' end
local g = tonumber(u[2])
if ARGV[6] == '1' then g = g + 1 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'ro', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'ph', ARGV[4], 'pc', now()) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'd', ARGV[5]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'fd', ARGV[7]) end
redis.call('HSET', KEYS[1], 'g', g, 'rv', tonumber(u[1]) + 1)
-- The calling session moves to the new generation in the same step: it never lapses.
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'g0', g) end
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS: user, sessions. ARGV: now. Deletes the user and every session; returns the username, false, or {'late'}. */
const DELETE_USER = `${CLOCK}${SESSION_KEY}
if late() then return {'late'} end
local name = redis.call('HGET', KEYS[1], 'n')
if not name then return false end
for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do redis.call('DEL', sessionKey(sid)) end
redis.call('DEL', KEYS[1], KEYS[2], string.sub(KEYS[1], 1, -2) .. 'x')
return name
`;

/** The commands RedisUsers's scripts add to the client. */
interface Commands {
  authCreateUser(...args: Args): Promise<number>;
  authUpdateUser(...args: Args): Promise<string | string[]>;
  authDeleteUser(...args: Args): Promise<string | null | ['late']>;
}

const run = (redis: RedisClient) => redis as RedisClient & Commands;

/** Users: the record, its name and skeleton claims, the listing; changed and deleted under the last-admin rule. */
export class RedisUsers extends RedisBase {
  static readonly scripts: Record<keyof Commands, Script> = {
    authCreateUser: { keys: 1, lua: CREATE_USER },
    authUpdateUser: { keys: 2, lua: UPDATE_USER },
    authDeleteUser: { keys: 2, lua: DELETE_USER },
  };

  /**
   * Three keys in three slots, written in an order that survives a crash between any two: the
   * user (invisible until named), the name (the atomic uniqueness check), the listing entry. A
   * name whose user was never written is reclaimed; a user whose name was taken is removed.
   */
  async fileUserIds(): Promise<string[]> {
    return this.call(() => this.redis.smembers(this.fileUsersKey));
  }

  async createUser(user: NewUser, claims?: { readonly skeleton: string }): Promise<'created' | 'exists' | 'confusable'> {
    const created = this.notLate(await this.call(() =>
      run(this.redis).authCreateUser(this.userKey(user.id), this.clockArg(), user.id, user.username, user.passwordHash, JSON.stringify(user.roles), user.disabled ? 1 : 0, user.origin, user.fileDigest ?? '', claims?.skeleton ?? ''),
    ));
    if (created === 0 && !(await this.unfinished(user))) return 'exists';
    let outcome: 'created' | 'exists' | 'confusable';
    try {
      outcome = await this.nameUser(user, claims);
    } catch (err) {
      // The caller is told UNAVAILABLE: nothing of the user may stay (a name held would make its
      // retry ALREADY_EXISTS; a record without its name would be a user nobody can reach).
      const entry = `${user.username}${NAME_SEPARATOR}${user.id}`;
      this.undo([
        () => this.releaseName(this.nameKey(user.username), user.id),
        ...(claims ? [() => this.releaseName(this.skeletonKey(claims.skeleton), user.id)] : []),
        () => this.call(() => this.redis.zrem(this.usersKey, entry)),
        () => this.call(() => this.redis.srem(this.fileUsersKey, user.id)),
        () => this.call(() => this.redis.del(this.userKey(user.id))),
      ]);
      throw err;
    }
    // Last, and never undone: were its entry in the admin set applied and the record then
    // deleted (on a Cluster the two are on different nodes), the set would count an admin who is
    // not there. A failure here leaves the user made, and out of the set at worst: a refusal too
    // many, never one too few (the last-admin rule); UNAVAILABLE for Register says "may exist".
    if (outcome === 'created') await this.noteAdmin(user.id, user);
    return outcome;
  }

  /**
   * An id that exists without holding its name: the record of a creation cut short (it landed
   * inside its deadline's slack after the caller gave up, or the process stopped). A users file's
   * user comes back under the same id: its creation is finished, not refused as existing.
   */
  private async unfinished(user: NewUser): Promise<boolean> {
    const [name, holder] = await Promise.all([this.call(() => this.redis.hget(this.userKey(user.id), 'n')), this.call(() => this.redis.get(this.nameKey(user.username)))]);
    return name === user.username && holder !== user.id;
  }

  /** After the record: the name (the uniqueness check, what makes the user visible; already this id's when a creation is finished), the name's look, the listing. */
  protected async nameUser(user: NewUser, claims: { readonly skeleton: string } | undefined): Promise<'created' | 'exists' | 'confusable'> {
    // The name as the look is claimed (a holder whose user is gone is reclaimed; one that is this
    // id counts as claimed), and the look after it; a user whose name was taken is removed.
    if (!(await this.claim(this.nameKey(user.username), user.id))) {
      await this.call(() => this.redis.del(this.userKey(user.id)));
      return 'exists';
    }
    if (claims && !(await this.claim(this.skeletonKey(claims.skeleton), user.id))) {
      await this.releaseName(this.nameKey(user.username), user.id);
      await this.call(() => this.redis.del(this.userKey(user.id)));
      return 'confusable';
    }
    await this.call(() => this.redis.zadd(this.usersKey, 0, `${user.username}${NAME_SEPARATOR}${user.id}`));
    if (user.origin === 'file') await this.call(() => this.redis.sadd(this.fileUsersKey, user.id));
    return 'created';
  }

  /** SET NX of `key` (a name, a look) to `userId`, taking it over from a user that no longer exists: true when `userId` holds it. */
  protected async claim(key: string, userId: string): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await this.claimName(key, userId)) return true;
      const holder = await this.call(() => this.redis.get(key));
      if (holder === userId) return true;
      if (holder === null || (await this.call(() => this.redis.exists(this.userKey(holder)))) === 1) return false;
      await this.releaseName(key, holder);
    }
    return false;
  }

  async findUserByUsername(username: string): Promise<UserRecord | undefined> {
    const id = await this.call(() => this.redis.get(this.nameKey(username)));
    return id === null ? undefined : this.getUser(id);
  }

  getUser(userId: string): Promise<UserRecord | undefined> {
    return this.readUser(userId);
  }

  listUsers(query: UserQuery): Promise<UserRecord[]> {
    return this.listUserRecords(query);
  }

  async updateUser(userId: string, change: UserChange): Promise<UpdateResult> {
    return this.underAdminRule(userId, change, () => this.writeUser(userId, change), (r) => (r.outcome === 'updated' ? r.user : undefined), () => this.getUser(userId));
  }

  protected async writeUser(userId: string, change: UserChange): Promise<UpdateResult> {
    const kept = change.keepSession === undefined ? this.userKey(userId) : this.sessionKey(userId, change.keepSession);
    const reply = this.notLate(await this.call(() =>
      run(this.redis).authUpdateUser(
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
    const name = await this.call(() => run(this.redis).authDeleteUser(this.userKey(userId), this.sessionsKey(userId), this.clockArg()));
    // Late is a table: a username may be the word itself.
    if (Array.isArray(name)) this.notLate(name);
    if (typeof name !== 'string') return undefined;
    await this.releaseName(this.nameKey(name), userId);
    if (skeleton) await this.releaseName(this.skeletonKey(skeleton), userId);
    await this.call(() => this.redis.zrem(this.usersKey, `${name}${NAME_SEPARATOR}${userId}`));
    await this.call(() => this.redis.srem(this.fileUsersKey, userId));
    return user;
  }
}
