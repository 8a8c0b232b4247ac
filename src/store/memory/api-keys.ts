import type { ApiKeyRecord } from '../../core/api-keys.js';
import type { LiveUser } from '../../core/records.js';
import { MemoryBase } from './base.js';

/**
 * API keys by id, and each owner's ids (at most AUTH_API_KEYS_PER_OWNER live ones): listing or
 * creating reads the owner's few, never the whole table. Expired keys and keys whose owner is
 * gone leave when the owner's are next read, and at the sweep.
 */
export class MemoryApiKeys extends MemoryBase {
  async createApiKey(key: ApiKeyRecord, maxPerOwner: number): Promise<'created' | 'limit' | 'owner_gone'> {
    if (!this.apiKeyOwnerExists(key.ownerId)) return 'owner_gone';
    if ((await this.listApiKeys(key.ownerId)).length >= maxPerOwner) return 'limit';
    this.apiKeys.set(key.id, key);
    const ids = this.apiKeysByOwner.get(key.ownerId) ?? new Set<string>();
    this.apiKeysByOwner.set(key.ownerId, ids.add(key.id));
    return 'created';
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    return this.apiKeys.get(id);
  }

  async listApiKeys(ownerId: string): Promise<ApiKeyRecord[]> {
    this.dropEndedApiKeys(ownerId, this.options.clock.now());
    const held = [...(this.apiKeysByOwner.get(ownerId) ?? [])].map((id) => this.apiKeys.get(id)!);
    return held.sort((a, b) => a.createdAt - b.createdAt);
  }

  async revokeApiKey(ownerId: string, id: string): Promise<boolean> {
    if (this.apiKeys.get(id)?.ownerId !== ownerId) return false;
    this.apiKeysByOwner.get(ownerId)?.delete(id);
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

  private apiKeyOwnerExists(ownerId: string): boolean {
    return ownerId.startsWith('sva_') ? this.accountsById.has(ownerId) : this.byId.has(ownerId);
  }

  /** Forgets the owner's keys that have expired, or all of them when the owner is gone. */
  protected dropEndedApiKeys(ownerId: string, now: number): void {
    const ids = this.apiKeysByOwner.get(ownerId);
    if (!ids) return;
    const gone = !this.apiKeyOwnerExists(ownerId);
    for (const id of ids) {
      if (gone || this.apiKeys.get(id)!.expiresAt <= now) {
        this.apiKeys.delete(id);
        ids.delete(id);
      }
    }
    if (ids.size === 0) this.apiKeysByOwner.delete(ownerId);
  }
}
