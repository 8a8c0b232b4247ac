import { MemoryBase } from './base.js';

/**
 * Ceremonies held at most: StartPasskeyLogin needs no account, so past this the oldest goes
 * (each is about 300 bytes; the per-address start limit keeps one client to a small share).
 */
export const MAX_CEREMONIES = 10_000;

/** Passkey ceremonies (single use, expiring) and the owner of each credential id. */
export class MemoryPasskeys extends MemoryBase {
  async putCeremony(id: string, ceremony: string, ttlMs: number): Promise<void> {
    while (this.ceremonies.size >= MAX_CEREMONIES) this.ceremonies.delete(this.ceremonies.keys().next().value!);
    this.ceremonies.set(id, { body: ceremony, expiresAt: this.options.clock.now() + ttlMs });
  }

  async takeCeremony(id: string): Promise<string | undefined> {
    const found = this.ceremonies.get(id);
    this.ceremonies.delete(id);
    return found && found.expiresAt > this.options.clock.now() ? found.body : undefined;
  }

  async linkPasskey(credentialId: string, userId: string): Promise<'linked' | 'taken'> {
    const owner = this.passkeyOwners.get(credentialId);
    if (owner !== undefined && owner !== userId && this.byId.has(owner)) return 'taken';
    this.passkeyOwners.set(credentialId, userId);
    return 'linked';
  }

  async passkeyOwner(credentialId: string): Promise<string | undefined> {
    const owner = this.passkeyOwners.get(credentialId);
    return owner !== undefined && this.byId.has(owner) ? owner : undefined;
  }

  async unlinkPasskey(credentialId: string, userId: string): Promise<void> {
    if (this.passkeyOwners.get(credentialId) === userId) this.passkeyOwners.delete(credentialId);
  }
}
