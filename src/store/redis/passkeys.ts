import { RedisBase, type Args, type RedisClient, type Script } from './base.js';

/** KEYS: the credential's owner key. ARGV: user id. Sets it unless another user holds it: 1 linked, 0 taken. */
const LINK = `
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`;

/** KEYS: the credential's owner key. ARGV: user id. Deletes it if that user still holds it. */
const UNLINK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`;

/** KEYS: the ceremony's key. Returns its value and deletes it in one step (GETDEL, on any Redis). */
const TAKE = `
local value = redis.call('GET', KEYS[1])
if value then redis.call('DEL', KEYS[1]) end
return value
`;

/** The commands RedisPasskeys's scripts add to the client. */
interface Commands {
  authTakeCeremony(...args: Args): Promise<string | null>;
  authLinkPasskey(...args: Args): Promise<number>;
  authUnlinkPasskey(...args: Args): Promise<number>;
}

const run = (redis: RedisClient) => redis as RedisClient & Commands;

/**
 * Passkey ceremonies (`pkc:{id}`, expiring with PX, taken by a script that reads and deletes: single use on every
 * instance) and the owner of each credential id (`pk:{credential id}`).
 */
export class RedisPasskeys extends RedisBase {
  static readonly scripts: Record<keyof Commands, Script> = {
    authTakeCeremony: { keys: 1, lua: TAKE },
    authLinkPasskey: { keys: 1, lua: LINK },
    authUnlinkPasskey: { keys: 1, lua: UNLINK },
  };

  async putCeremony(id: string, ceremony: string, ttlMs: number): Promise<void> {
    await this.call(() => this.redis.set(`${this.prefix}pkc:{${id}}`, ceremony, 'PX', ttlMs));
  }

  async takeCeremony(id: string): Promise<string | undefined> {
    return (await this.call(() => run(this.redis).authTakeCeremony(`${this.prefix}pkc:{${id}}`))) ?? undefined;
  }

  async linkPasskey(credentialId: string, userId: string): Promise<'linked' | 'taken'> {
    const linked = await this.call(() => run(this.redis).authLinkPasskey(`${this.prefix}pk:{${credentialId}}`, userId));
    return Number(linked) === 1 ? 'linked' : 'taken';
  }

  async passkeyOwner(credentialId: string): Promise<string | undefined> {
    return (await this.call(() => this.redis.get(`${this.prefix}pk:{${credentialId}}`))) ?? undefined;
  }

  async unlinkPasskey(credentialId: string, userId: string): Promise<void> {
    await this.call(() => run(this.redis).authUnlinkPasskey(`${this.prefix}pk:{${credentialId}}`, userId));
  }
}
