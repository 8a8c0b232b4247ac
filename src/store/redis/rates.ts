import { RedisBase, type Args, type RedisClient, type Script } from './base.js';
import { CLOCK } from './lua.js';

/**
 * KEYS: counter base. ARGV: now, limit, windowMs. A fixed window on the store's clock: the key of
 * the current window counts hits and expires with it. Returns 0 when allowed, else ms to wait.
 */
const HIT_RATE = `${CLOCK}
local t = now()
local w = tonumber(ARGV[3])
local start = math.floor(t / w) * w
local key = KEYS[1] .. ':' .. start
local n = redis.call('INCR', key)
if n == 1 then redis.call('PEXPIREAT', key, start + w) end
if n > tonumber(ARGV[2]) then return start + w - t end
return 0
`;

/** The commands RedisRates's scripts add to the client. */
interface Commands {
  authHitRate(...args: Args): Promise<number>;
}

const run = (redis: RedisClient) => redis as RedisClient & Commands;

/** Fixed-window rate counters (registrations, reset requests), expiring with their window. */
export class RedisRates extends RedisBase {
  static readonly scripts: Record<keyof Commands, Script> = {
    authHitRate: { keys: 1, lua: HIT_RATE },
  };

  async hitRate(key: string, limit: number, windowMs: number): Promise<{ allowed: boolean; retryAfterMs: number }> {
    const wait = Number(await this.call(() => run(this.redis).authHitRate(`${this.prefix}r:{${key}}`, this.clockArg(), limit, windowMs)));
    return { allowed: wait === 0, retryAfterMs: wait };
  }
}
