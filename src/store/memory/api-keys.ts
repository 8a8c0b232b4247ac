import type { ApiKeyRecord } from '../../core/api-keys.js';
import type { LiveUser } from '../../core/records.js';
import { MemoryBase } from './base.js';

/** API keys by id; an owner's are found by a scan of theirs (at most AUTH_API_KEYS_PER_OWNER each). */
export class MemoryApiKeys extends MemoryBase {
  async createApiKey(key: ApiKeyRecord, maxPerOwner: number): Promise<'created' | 'limit' | 'owner_gone'> {
    if (!this.ownerExists(key.ownerId)) return 'owner_gone';
    if ((await this.listApiKeys(key.ownerId)).length >= maxPerOwner) return 'limit';
    this.apiKeys.set(key.id, key);
    return 'created';
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    return this.apiKeys.get(id);
  }

  async listApiKeys(ownerId: string): Promise<ApiKeyRecord[]> {
    const now = this.options.clock.now();
    const held = [];
    for (const [id, key] of this.apiKeys) {
      if (key.expiresAt <= now || !this.ownerExists(key.ownerId)) this.apiKeys.delete(id);
      else if (key.ownerId === ownerId) held.push(key);
    }
    return held.sort((a, b) => a.createdAt - b.createdAt);
  }

  async revokeApiKey(ownerId: string, id: string): Promise<boolean> {
    if (this.apiKeys.get(id)?.ownerId !== ownerId) return false;
    return this.apiKeys.delete(id);
  }

  async touchApiKey(id: string, at: number): Promise<void> {
    const key = this.apiKeys.get(id);
    if (key) this.apiKeys.set(id, { ...key, lastUsedAt: at });
  }

  async liveApiKey(ownerId: string, id: string): Promise<LiveUser | undefined> {
    const key = this.apiKeys.get(id);
    if (!key || key.ownerId !== ownerId || key.expiresAt <= this.options.clock.now()) return undefined;
    if (ownerId.startsWith('sva_')) {
      const account = this.accountsById.get(ownerId);
      return account && !account.disabled ? { id: account.id, username: account.name, roles: account.roles, revision: account.revision } : undefined;
    }
    const user = this.byId.get(ownerId)?.record;
    return user && !user.disabled && user.generation === key.ownerGeneration ? { id: user.id, username: user.username, roles: user.roles, revision: user.revision } : undefined;
  }

  private ownerExists(ownerId: string): boolean {
    return ownerId.startsWith('sva_') ? this.accountsById.has(ownerId) : this.byId.has(ownerId);
  }
}
