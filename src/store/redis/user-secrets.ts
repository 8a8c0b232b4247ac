import type { UserSecretsRecord } from '../../core/user-secrets.js';
import { RedisBase, type Args, type RedisClient, type Script } from './base.js';
import { CLOCK } from './lua.js';

/**
 * KEYS: user, secrets. ARGV: clock, ifVersion, data ('' deletes). Compare-and-set of the user's
 * secrets document {v, d}: 'written', 'conflict', 'user_gone', or 'late'. The new version is
 * Redis's clock in microseconds (or one past the old, if larger): a document made again for a
 * deleted user's id starts past every version the old one had. Below 2^53, so exact in Lua.
 */
const WRITE_SECRETS = `${CLOCK}
if late() then return 'late' end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'user_gone' end
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if v ~= tonumber(ARGV[2]) then return 'conflict' end
if ARGV[3] == '' then redis.call('DEL', KEYS[2]) return 'written' end
local t = redis.call('TIME')
local next = math.max(v + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
redis.call('HSET', KEYS[2], 'v', string.format('%.0f', next), 'd', ARGV[3])
return 'written'
`;

/** The commands RedisUserSecrets's scripts add to the client. */
interface Commands {
  authWriteSecrets(...args: Args): Promise<'written' | 'conflict' | 'user_gone' | 'late'>;
}

const run = (redis: RedisClient) => redis as RedisClient & Commands;

/** Each user's secrets document, in the user's slot (deleted with them), changed by compare-and-set. */
export class RedisUserSecrets extends RedisBase {
  static readonly scripts: Record<keyof Commands, Script> = {
    authWriteSecrets: { keys: 2, lua: WRITE_SECRETS },
  };

  async readUserSecrets(userId: string): Promise<UserSecretsRecord | undefined> {
    const [v, d] = await this.call(() => this.redis.hmget(this.secretsKey(userId), 'v', 'd'));
    return v == null || d == null ? undefined : { version: Number(v), data: d };
  }

  async writeUserSecrets(userId: string, ifVersion: number, data: string | undefined): Promise<'written' | 'conflict' | 'user_gone'> {
    const outcome = this.notLate(await this.call(() => run(this.redis).authWriteSecrets(this.userKey(userId), this.secretsKey(userId), this.clockArg(), ifVersion, data ?? '')));
    return outcome as 'written' | 'conflict' | 'user_gone';
  }
}
