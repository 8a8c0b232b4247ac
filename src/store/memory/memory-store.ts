import { withPorts, type PortsOf } from '../ports.js';
import type { Store } from '../store.js';
import { MemoryApiKeys } from './api-keys.js';
import { MemoryAttempts } from './attempts.js';
import { MemoryBase } from './base.js';
import { MemoryMaintenance } from './maintenance.js';
import { MemoryPasskeys } from './passkeys.js';
import { MemoryRates } from './rates.js';
import { MemoryServiceAccounts } from './service-accounts.js';
import { MemorySessions } from './sessions.js';
import { MemoryUserSecrets } from './user-secrets.js';
import { MemoryUsers } from './users.js';

export type { MemoryStoreOptions } from './base.js';

/** The memory store's ports, one file each: adding one is a line here. */
const PORTS = [MemoryUsers, MemorySessions, MemoryServiceAccounts, MemoryAttempts, MemoryRates, MemoryUserSecrets, MemoryPasskeys, MemoryApiKeys, MemoryMaintenance] as const;

/** AUTH_REFRESH_REUSE_INTERVAL's upper bound. */
const MAX_REUSE_INTERVAL_MS = 300_000;

export interface MemoryStore extends PortsOf<typeof PORTS> {}

/**
 * The default store: everything in this process, nothing on disk (see MemoryBase). Every port is
 * one file of this folder over the base's tables; this facade adds the lifecycle and the upkeep.
 * `sweep` drops what has expired; the service runs it on a timer.
 */
export class MemoryStore extends MemoryBase implements Store {
  async connect(): Promise<void> {}

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  /** Drops sessions whose last access token has expired, and expired attempt counters. */
  sweep(now: number): { sessions: number } {
    let sessions = 0;
    for (const [id, s] of this.sessions) {
      if (!s.active(now, this.options.accessGraceMs)) {
        this.sessions.delete(id);
        sessions++;
      } else if (s.previous && now - s.previous.rotatedAt > MAX_REUSE_INTERVAL_MS) {
        // Past any reuse interval, the previous token is only re-use: its tag says so alone.
        s.previous = undefined;
      }
    }
    for (const user of this.byId.values()) if (user.head) this.pruneSessions(user, now, () => {});
    this.attempts.sweep(now);
    this.sweepAssertions(now);
    this.rates.sweep(now);
    for (const [id, c] of this.ceremonies) if (c.expiresAt <= now) this.ceremonies.delete(id);
    for (const ownerId of [...this.apiKeysByOwner.keys()]) this.dropEndedApiKeys(ownerId, now);
    return { sessions };
  }

  /** Entry counts, for tests, metrics and the state budget. */
  size(): { users: number; sessions: number; attempts: number; rates: number; ceremonies: number; apiKeys: number } {
    return { users: this.byId.size, sessions: this.sessions.size, attempts: this.attempts.size, rates: this.rates.size, ceremonies: this.ceremonies.size, apiKeys: this.apiKeys.size };
  }
}

withPorts(MemoryStore, PORTS);
