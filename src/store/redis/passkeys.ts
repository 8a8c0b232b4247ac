import { RedisBase, type Args, type RedisClient, type Script } from './base.js';
import { CLOCK } from './lua.js';

/*
 * Each script that changes what a client sees checks the caller's deadline first (see CLOCK's
 * late()): run after the caller was told UNAVAILABLE, it does nothing, so the client's retry finds
 * the ceremony still there and the credential as it was. A ceremony put late is left alone: nobody
 * holds its id, and it expires.
 */

/** KEYS: the credential's owner key. ARGV: now, user id. Sets it unless another user holds it: 1 linked, 0 taken, -1 late. */
const LINK = `${CLOCK}
if late() then return -1 end
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

/** KEYS: the credential's owner key. ARGV: now, user id. Deletes it if that user still holds it: 0, or -1 when late. */
const UNLINK = `${CLOCK}
if late() then return -1 end
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
return 0
`;

/** KEYS: the ceremony's key. ARGV: now. Returns its value and deletes it in one step (GETDEL, on any Redis); {'late'} when late. */
const TAKE = `${CLOCK}
if late() then return {'late'} end
local value = redis.call('GET', KEYS[1])
if value then redis.call('DEL', KEYS[1]) end
return value
`;

/** The commands RedisPasskeys's scripts add to the client. */
interface Commands {
  authTakeCeremony(...args: Args): Promise<string | null | ['late']>;
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
    const taken = await this.call(() => run(this.redis).authTakeCeremony(`${this.prefix}pkc:{${id}}`, this.clockArg()));
    if (Array.isArray(taken)) this.notLate(taken); // late is a table, never a ceremony's text
    return typeof taken === 'string' ? taken : undefined;
  }

  async linkPasskey(credentialId: string, userId: string): Promise<'linked' | 'taken'> {
    const linked = this.notLate(await this.call(() => run(this.redis).authLinkPasskey(`${this.prefix}pk:{${credentialId}}`, this.clockArg(), userId)));
    return Number(linked) === 1 ? 'linked' : 'taken';
  }

  async passkeyOwner(credentialId: string): Promise<string | undefined> {
    return (await this.call(() => this.redis.get(`${this.prefix}pk:{${credentialId}}`))) ?? undefined;
  }

  async unlinkPasskey(credentialId: string, userId: string): Promise<void> {
    this.notLate(await this.call(() => run(this.redis).authUnlinkPasskey(`${this.prefix}pk:{${credentialId}}`, this.clockArg(), userId)));
  }
}
