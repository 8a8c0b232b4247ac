import { mayDemote, type UserQuery } from '../../core/accounts.js';
import type { LiveUser } from '../../core/records.js';
import { liveAccount, type Credential, type NewCredential, type ServiceAccountChange, type ServiceAccountRecord, type ServiceAccountUpdate } from '../../core/service-accounts.js';
import { applyServiceAccountChange } from '../service-account-rules.js';
import { MemoryBase } from './base.js';

/**
 * Service accounts: records by id, in name order for listing, and the jti of every assertion
 * until it expires. Assertions are bounded: at the cap a new one is refused (a replay must never
 * slip through because its jti was forgotten), and only a holder of an account's private key can
 * add to them. The last-admin rule counts accounts and users together (the base's AdminSet).
 */
export class MemoryServiceAccounts extends MemoryBase {
  async createServiceAccount(account: { id: string; name: string; roles: readonly string[]; credential: NewCredential }): Promise<'created' | 'exists'> {
    if (this.accountsByName.has(account.name) || this.accountsById.has(account.id)) return 'exists';
    const now = this.now();
    const record: ServiceAccountRecord = Object.freeze({
      id: account.id,
      name: account.name,
      roles: Object.freeze([...account.roles]),
      disabled: false,
      createdAt: now,
      revision: 1,
      credentials: Object.freeze([{ ...account.credential, createdAt: now } as Credential]),
    });
    this.accountsById.set(account.id, record);
    this.accountsByName.set(account.name, account.id);
    this.admins.note(account.id, record);
    return 'created';
  }

  async getServiceAccount(id: string): Promise<ServiceAccountRecord | undefined> {
    return this.accountsById.get(id);
  }

  async listServiceAccounts(query: UserQuery): Promise<ServiceAccountRecord[]> {
    const out: ServiceAccountRecord[] = [];
    const start = query.after !== undefined && query.after >= query.prefix ? query.after : query.prefix;
    for (const [name, id] of this.accountsByName.entries(start)) {
      if (!name.startsWith(query.prefix) || out.length >= query.limit) break;
      if (name !== query.after) out.push(this.accountsById.get(id)!);
    }
    return out;
  }

  async updateServiceAccount(id: string, change: ServiceAccountChange): Promise<ServiceAccountUpdate> {
    const current = this.accountsById.get(id);
    if (!current) return { outcome: 'not_found' };
    if (mayDemote(change) && this.admins.refuses(id, change.keepAnAdmin)) return { outcome: 'last_admin' };
    const result = applyServiceAccountChange(current, change, this.now());
    if (result.outcome !== 'updated') return result;
    const { account } = result;
    this.accountsById.set(id, account);
    this.admins.note(id, account);
    return { outcome: 'updated', account };
  }

  async deleteServiceAccount(id: string, options: { readonly keepAnAdmin?: boolean } = {}): Promise<boolean | 'last_admin'> {
    const account = this.accountsById.get(id);
    if (!account) return false;
    if (this.admins.refuses(id, options.keepAnAdmin)) return 'last_admin';
    this.admins.note(id, undefined);
    this.accountsById.delete(id);
    this.accountsByName.delete(account.name);
    return true;
  }

  async liveCredential(serviceAccountId: string, credentialId: string): Promise<LiveUser | undefined> {
    const account = this.accountsById.get(serviceAccountId);
    return account && liveAccount(account, credentialId);
  }

  async useAssertion(serviceAccountId: string, jti: string, expiresAt: number): Promise<boolean> {
    const key = `${serviceAccountId}:${jti}`;
    const now = this.now();
    const seen = this.assertions.get(key);
    if (seen !== undefined && now < seen) return false;
    if (this.assertions.size >= this.maxAssertions) {
      this.sweepAssertions(now);
      if (this.assertions.size >= this.maxAssertions) return false;
    }
    this.assertions.set(key, expiresAt);
    return true;
  }
}
