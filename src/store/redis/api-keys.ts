import type { ApiKeyRecord } from '../../core/api-keys.js';
import type { LiveUser, UserRecord } from '../../core/records.js';
import type { ServiceAccountRecord } from '../../core/service-accounts.js';
import { RedisBase, type Args, type RedisClient, type Script } from './base.js';
import { CLOCK } from './lua.js';

/**
 * KEYS: the owner's set of key ids. ARGV: now, the limit, the new id. Adds it unless the set is
 * full: 1 added, 0 full, -1 late (a key its caller never received must not take a place).
 */
const CLAIM = `${CLOCK}
if late() then return -1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[3])
return 1
`;

interface Commands {
  authClaimApiKey(...args: Args): Promise<number>;
}

const run = (redis: RedisClient) => redis as RedisClient & Commands;

/** What this port reads of the others (the facade has them all). */
interface Owners {
  getUser(userId: string): Promise<UserRecord | undefined>;
  getServiceAccount(id: string): Promise<ServiceAccountRecord | undefined>;
}

/**
 * API keys: `ak:{id}` holds a key (JSON, expiring with it), `{owner}:aks` the ids of an owner's
 * keys (in the owner's slot; ids whose key is gone leave it when listed).
 */
export class RedisApiKeys extends RedisBase {
  static readonly scripts: Record<keyof Commands, Script> = {
    authClaimApiKey: { keys: 1, lua: CLAIM },
  };

  private keyOf(id: string): string {
    return `${this.prefix}ak:{${id}}`;
  }

  private setOf(ownerId: string): string {
    return `${this.prefix}{${ownerId}}:aks`;
  }

  private get owners(): Owners {
    return this as unknown as Owners;
  }

  private async owner(ownerId: string): Promise<{ id: string; username: string; roles: readonly string[]; revision: number; disabled: boolean; generation: number } | undefined> {
    if (ownerId.startsWith('sva_')) {
      const a = await this.owners.getServiceAccount(ownerId);
      return a && { id: a.id, username: a.name, roles: a.roles, revision: a.revision, disabled: a.disabled, generation: 0 };
    }
    const u = await this.owners.getUser(ownerId);
    return u && { id: u.id, username: u.username, roles: u.roles, revision: u.revision, disabled: u.disabled, generation: u.generation };
  }

  async createApiKey(key: ApiKeyRecord, maxPerOwner: number): Promise<'created' | 'limit' | 'owner_gone'> {
    if (!(await this.owner(key.ownerId))) return 'owner_gone';
    await this.listApiKeys(key.ownerId);
    // The key first, then its place in the owner's set: a list never drops an id whose key is on its way.
    await this.call(() => this.redis.set(this.keyOf(key.id), JSON.stringify(key), 'PX', Math.max(1, key.expiresAt - Date.now())));
    let claimed: number;
    try {
      claimed = Number(this.notLate(await this.call(() => run(this.redis).authClaimApiKey(this.setOf(key.ownerId), this.clockArg(), maxPerOwner, key.id))));
    } catch (err) {
      // Told UNAVAILABLE: the key goes (its secret was never handed out), and its place if it got one.
      this.undo([() => this.call(() => this.redis.srem(this.setOf(key.ownerId), key.id)), () => this.call(() => this.redis.del(this.keyOf(key.id)))]);
      throw err;
    }
    if (claimed !== 1) {
      await this.call(() => this.redis.del(this.keyOf(key.id)));
      return 'limit';
    }
    return 'created';
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    const raw = await this.call(() => this.redis.get(this.keyOf(id)));
    return raw === null ? undefined : (JSON.parse(raw) as ApiKeyRecord);
  }

  async listApiKeys(ownerId: string): Promise<ApiKeyRecord[]> {
    const ids = await this.call(() => this.redis.smembers(this.setOf(ownerId)));
    const keys = await Promise.all(ids.map((id) => this.getApiKey(id)));
    const gone = ids.filter((_, i) => keys[i] === undefined);
    if (gone.length > 0) await this.call(() => this.redis.srem(this.setOf(ownerId), ...gone));
    return keys.filter((k): k is ApiKeyRecord => k !== undefined).sort((a, b) => a.createdAt - b.createdAt);
  }

  async revokeApiKey(ownerId: string, id: string): Promise<boolean> {
    const key = await this.getApiKey(id);
    if (!key || key.ownerId !== ownerId) return false;
    // On time or not at all: a late revocation would end a key its caller was told still works.
    const deleted = await this.deleteOnTime(this.keyOf(id));
    await this.call(() => this.redis.srem(this.setOf(ownerId), id));
    return deleted;
  }

  async touchApiKey(id: string, at: number): Promise<void> {
    const key = await this.getApiKey(id);
    if (!key) return;
    const ttl = key.expiresAt - Date.now();
    // XX: a key revoked meanwhile stays revoked.
    if (ttl > 0) await this.call(() => this.redis.set(this.keyOf(id), JSON.stringify({ ...key, lastUsedAt: at }), 'PX', ttl, 'XX'));
  }

  async liveApiKey(ownerId: string, id: string): Promise<LiveUser | undefined> {
    const key = await this.getApiKey(id);
    if (!key || key.ownerId !== ownerId) return undefined;
    const owner = await this.owner(ownerId);
    if (!owner || owner.disabled || owner.generation !== key.ownerGeneration) return undefined;
    return { id: owner.id, username: owner.username, roles: owner.roles, revision: owner.revision };
  }
}
