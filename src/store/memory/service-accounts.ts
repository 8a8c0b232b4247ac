import { BTree } from './btree.js';
import type { Clock } from '../../clock.js';
import { mayDemote } from '../../core/accounts.js';
import type { LiveUser } from '../../core/records.js';
import { AdminSet } from './admin-set.js';
import { applyServiceAccountChange } from '../service-account-rules.js';
import { liveAccount, type Credential, type NewCredential, type ServiceAccountChange, type ServiceAccountRecord, type ServiceAccountStore, type ServiceAccountUpdate } from '../../core/service-accounts.js';

/**
 * Service accounts in memory (the memory store's part for them): records by id, in name order
 * for listing, and the jti of every assertion until it expires. Assertions are bounded: at the
 * cap a new one is refused (a replay must never slip through because its jti was forgotten), and
 * only a holder of an account's private key can add to them.
 */
export class MemoryServiceAccounts implements ServiceAccountStore {
  private readonly byId = new Map<string, ServiceAccountRecord>();
  private readonly byName = new BTree<string, string>();
  private readonly assertions = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly maxAssertions: number,
    /** Shared with the users' part: the last-admin rule counts both. */
    private readonly admins = new AdminSet(),
  ) {}

  async createServiceAccount(account: { id: string; name: string; roles: readonly string[]; credential: NewCredential }): Promise<'created' | 'exists'> {
    if (this.byName.has(account.name) || this.byId.has(account.id)) return 'exists';
    const now = this.clock.now();
    const record: ServiceAccountRecord = Object.freeze({
      id: account.id,
      name: account.name,
      roles: Object.freeze([...account.roles]),
      disabled: false,
      createdAt: now,
      revision: 1,
      credentials: Object.freeze([{ ...account.credential, createdAt: now } as Credential]),
    });
    this.byId.set(account.id, record);
    this.byName.set(account.name, account.id);
    this.admins.note(account.id, record);
    return 'created';
  }

  async getServiceAccount(id: string): Promise<ServiceAccountRecord | undefined> {
    return this.byId.get(id);
  }

  async listServiceAccounts(query: { prefix: string; after: string | undefined; limit: number }): Promise<ServiceAccountRecord[]> {
    const out: ServiceAccountRecord[] = [];
    const start = query.after !== undefined && query.after >= query.prefix ? query.after : query.prefix;
    for (const [name, id] of this.byName.entries(start)) {
      if (!name.startsWith(query.prefix) || out.length >= query.limit) break;
      if (name !== query.after) out.push(this.byId.get(id)!);
    }
    return out;
  }

  async updateServiceAccount(id: string, change: ServiceAccountChange): Promise<ServiceAccountUpdate> {
    const current = this.byId.get(id);
    if (!current) return { outcome: 'not_found' };
    if (mayDemote(change) && this.admins.refuses(id, change.keepAnAdmin)) return { outcome: 'last_admin' };
    const result = applyServiceAccountChange(current, change, this.clock.now());
    if (result.outcome !== 'updated') return result;
    const { account } = result;
    this.byId.set(id, account);
    this.admins.note(id, account);
    return { outcome: 'updated', account };
  }

  async deleteServiceAccount(id: string, options: { readonly keepAnAdmin?: boolean } = {}): Promise<boolean | 'last_admin'> {
    const account = this.byId.get(id);
    if (!account) return false;
    if (this.admins.refuses(id, options.keepAnAdmin)) return 'last_admin';
    this.admins.note(id, undefined);
    this.byId.delete(id);
    this.byName.delete(account.name);
    return true;
  }

  async liveCredential(serviceAccountId: string, credentialId: string): Promise<LiveUser | undefined> {
    const account = this.byId.get(serviceAccountId);
    return account && liveAccount(account, credentialId);
  }

  async useAssertion(serviceAccountId: string, jti: string, expiresAt: number): Promise<boolean> {
    const key = `${serviceAccountId}:${jti}`;
    const now = this.clock.now();
    const seen = this.assertions.get(key);
    if (seen !== undefined && now < seen) return false;
    if (this.assertions.size >= this.maxAssertions) {
      this.sweep(now);
      if (this.assertions.size >= this.maxAssertions) return false;
    }
    this.assertions.set(key, expiresAt);
    return true;
  }

  sweep(now: number): void {
    for (const [key, expiresAt] of this.assertions) if (now >= expiresAt) this.assertions.delete(key);
  }

  get size(): { serviceAccounts: number; assertions: number } {
    return { serviceAccounts: this.byId.size, assertions: this.assertions.size };
  }
}
