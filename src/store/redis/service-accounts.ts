import type { UserQuery } from '../../core/accounts.js';
import type { LiveUser } from '../../core/records.js';
import { MAX_CREDENTIALS, type NewCredential, type ServiceAccountChange, type ServiceAccountRecord, type ServiceAccountUpdate } from '../../core/service-accounts.js';
import { NAME_SEPARATOR, RedisBase, type Args, type RedisClient, type Script } from './base.js';
import { CLOCK } from './lua.js';
import { accountOf, fieldsOf, liveOf, type Reply } from './records.js';

/** KEYS: account. ARGV: now, name, roles, credentialId, credential JSON. 1 when created, 0 when the id exists, -1 when late. */
const CREATE_SERVICE_ACCOUNT = `${CLOCK}
if late() then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = now()
local c = cjson.decode(ARGV[5])
c.createdAt = t
redis.call('HSET', KEYS[1], 'n', ARGV[2], 'ro', ARGV[3], 'd', '0', 'c', t, 'rv', 1, 'cr:' .. ARGV[4], cjson.encode(c))
return 1
`;

/**
 * KEYS: account. ARGV: now, roles ('' = keep), disabled ('' = keep), maxCredentials, credential to
 * add (JSON, '' = none), credential id to remove ('' = none), its type.
 * Returns 'not_found' | 'no_such_credential' | 'too_many_credentials' | 'credential_exists' |
 * 'kid_taken' (another key declares the kid) | HGETALL. A key stored before kids were kept has
 * no thumbprint: its kid is its thumbprint.
 */
const UPDATE_SERVICE_ACCOUNT = `${CLOCK}
if late() then return 'late' end
local rv = redis.call('HGET', KEYS[1], 'rv')
if not rv then return 'not_found' end
if ARGV[6] ~= '' then
  local c = redis.call('HGET', KEYS[1], 'cr:' .. ARGV[6])
  if not c or cjson.decode(c).type ~= ARGV[7] then return 'no_such_credential' end
  redis.call('HDEL', KEYS[1], 'cr:' .. ARGV[6])
end
if ARGV[5] ~= '' then
  local added = cjson.decode(ARGV[5])
  local count = 0
  local kidTaken = false
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 3) == 'cr:' then
      count = count + 1
      local c = cjson.decode(redis.call('HGET', KEYS[1], field))
      if added.thumbprint and c.type == added.type and (c.thumbprint or c.kid) == added.thumbprint then return 'credential_exists' end
      if c.type == 'key' and added.type == 'key' and c.kid == added.kid then kidTaken = true end
    end
  end
  if count >= tonumber(ARGV[4]) then return 'too_many_credentials' end
  if kidTaken then return 'kid_taken' end
  added.createdAt = now()
  redis.call('HSET', KEYS[1], 'cr:' .. added.id, cjson.encode(added))
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'ro', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'd', ARGV[3]) end
redis.call('HSET', KEYS[1], 'rv', tonumber(rv) + 1)
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS: account. ARGV: credential id. {name, roles, revision} of an enabled account that holds the credential, or false. */
const LIVE_CREDENTIAL = `
local a = redis.call('HMGET', KEYS[1], 'n', 'ro', 'd', 'rv', 'cr:' .. ARGV[1])
if not a[1] or a[3] == '1' or not a[5] then return false end
return {a[1], a[2], a[4]}
`;

/**
 * KEYS: jti. ARGV: now, expiresAt. 1 when the jti is new (and is kept until expiresAt), 0 for a
 * replay, -1 when late: a use that landed after its caller was told UNAVAILABLE would make the
 * client's retry of the same assertion look like a replay.
 */
const USE_ASSERTION = `${CLOCK}
if late() then return -1 end
local ttl = tonumber(ARGV[2]) - now()
if ttl <= 0 then return 0 end
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ttl) then return 1 end
return 0
`;

/** The commands RedisServiceAccounts's scripts add to the client. */
interface Commands {
  authCreateServiceAccount(...args: Args): Promise<number>;
  authUpdateServiceAccount(...args: Args): Promise<string | string[]>;
  authLiveCredential(...args: Args): Promise<Reply | null>;
  authUseAssertion(...args: Args): Promise<number>;
}

const run = (redis: RedisClient) => redis as RedisClient & Commands;

/** Service accounts: the record with its credentials, its name claim and the listing; assertion ids until they expire. */
export class RedisServiceAccounts extends RedisBase {
  static readonly scripts: Record<keyof Commands, Script> = {
    authCreateServiceAccount: { keys: 1, lua: CREATE_SERVICE_ACCOUNT },
    authUpdateServiceAccount: { keys: 1, lua: UPDATE_SERVICE_ACCOUNT },
    authLiveCredential: { keys: 1, lua: LIVE_CREDENTIAL },
    authUseAssertion: { keys: 1, lua: USE_ASSERTION },
  };

  protected accountNameKey(name: string): string {
    return `${this.prefix}n:sa:{${name}}`;
  }

  /** As createUser: the account first, then its name (the uniqueness check), then the listing. */
  async createServiceAccount(account: { id: string; name: string; roles: readonly string[]; credential: NewCredential }): Promise<'created' | 'exists'> {
    const created = this.notLate(await this.call(() =>
      run(this.redis).authCreateServiceAccount(this.accountKey(account.id), this.clockArg(), account.name, JSON.stringify(account.roles), account.credential.id, JSON.stringify(account.credential)),
    ));
    if (created === 0) return 'exists';
    let outcome: 'created' | 'exists';
    try {
      outcome = await this.nameAccount(account);
    } catch (err) {
      // The caller is told UNAVAILABLE: nothing of the account may stay (see RedisUsers.createUser).
      this.undo([
        () => this.releaseName(this.accountNameKey(account.name), account.id),
        () => this.call(() => this.redis.zrem(this.accountsKey, `${account.name}${NAME_SEPARATOR}${account.id}`)),
        () => this.call(() => this.redis.del(this.accountKey(account.id))),
      ]);
      throw err;
    }
    // Last, and never undone (see RedisUsers.createUser).
    if (outcome === 'created') await this.noteAdmin(account.id, { roles: account.roles, disabled: false });
    return outcome;
  }

  protected async nameAccount(account: { id: string; name: string }): Promise<'created' | 'exists'> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await this.claimName(this.accountNameKey(account.name), account.id)) {
        await this.call(() => this.redis.zadd(this.accountsKey, 0, `${account.name}${NAME_SEPARATOR}${account.id}`));
        return 'created';
      }
      const holder = await this.call(() => this.redis.get(this.accountNameKey(account.name)));
      if (holder === null || (await this.call(() => this.redis.exists(this.accountKey(holder)))) === 1) break;
      await this.releaseName(this.accountNameKey(account.name), holder);
    }
    await this.call(() => this.redis.del(this.accountKey(account.id)));
    return 'exists';
  }

  getServiceAccount(id: string): Promise<ServiceAccountRecord | undefined> {
    return this.readAccount(id);
  }

  listServiceAccounts(query: UserQuery): Promise<ServiceAccountRecord[]> {
    return this.listAccountRecords(query);
  }

  async updateServiceAccount(id: string, change: ServiceAccountChange): Promise<ServiceAccountUpdate> {
    return this.underAdminRule(id, change, () => this.writeServiceAccount(id, change), (r) => (r.outcome === 'updated' ? r.account : undefined), () => this.getServiceAccount(id));
  }

  protected async writeServiceAccount(id: string, change: ServiceAccountChange): Promise<ServiceAccountUpdate> {
    const reply = this.notLate(await this.call(() =>
      run(this.redis).authUpdateServiceAccount(
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
    // On time or not at all: a late delete would end an account its caller was told still exists.
    await this.deleteOnTime(this.accountKey(id));
    await this.releaseName(this.accountNameKey(account.name), id);
    await this.call(() => this.redis.zrem(this.accountsKey, `${account.name}${NAME_SEPARATOR}${id}`));
    return true;
  }

  async liveCredential(serviceAccountId: string, credentialId: string): Promise<LiveUser | undefined> {
    const r = await this.call(() => run(this.redis).authLiveCredential(this.accountKey(serviceAccountId), credentialId));
    return r === null ? undefined : liveOf(serviceAccountId, r, 0);
  }

  async useAssertion(serviceAccountId: string, jti: string, expiresAt: number): Promise<boolean> {
    return this.notLate(await this.call(() => run(this.redis).authUseAssertion(`${this.prefix}{${serviceAccountId}}:j:${jti}`, this.clockArg(), expiresAt))) === 1;
  }
}
