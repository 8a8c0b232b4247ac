import { backoffDelay, type BackoffPolicy } from '../../core/login-throttle.js';
import type { AttemptEntry } from '../attempt-rules.js';


/** How many of the oldest entries are looked at for one that holds nothing back, before the oldest goes. */
const EVICTION_SCAN = 64;

/**
 * The memory store's login-attempt counters: a map bounded to `capacity` entries. Keys are
 * fixed-size digests and addresses (never a raw username), and an entry exists only for a key
 * with a failure or an attempt in flight, so a refused flood adds nothing. At the cap, the entry
 * that goes is the least recently touched one that holds nothing back (fewer failures than its
 * policy lets pass, nothing in flight): an attacker has to push thousands of throttled keys
 * through, each costing several hashed logins, before a key that is holding someone back can
 * go. Only when every entry looked at holds something back does the oldest go.
 */
export class AttemptTable {
  private readonly entries = new Map<string, AttemptEntry & { readonly harmless: boolean }>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The entry of `key`, unless it has expired. */
  get(key: string, now: number): AttemptEntry | undefined {
    const entry = this.entries.get(key);
    if (entry && now >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  put(key: string, entry: AttemptEntry, policy: BackoffPolicy): void {
    // Delete first: a touched entry moves to the young end of the map's order.
    if (!this.entries.delete(key) && this.entries.size >= this.capacity) this.evict();
    const { failures, inFlight, inFlightUntil, lastFailureAt, expiresAt } = entry;
    // Every login and client authentication writes one: its fields named, not spread.
    this.entries.set(key, { failures, inFlight, inFlightUntil, lastFailureAt, expiresAt, harmless: inFlight === 0 && backoffDelay(failures + 1, policy) === 0 });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  sweep(now: number): void {
    for (const [key, entry] of this.entries) if (now >= entry.expiresAt) this.entries.delete(key);
  }

  private evict(): void {
    let scanned = 0;
    for (const [key, entry] of this.entries) {
      if (entry.harmless) {
        this.entries.delete(key);
        return;
      }
      if (++scanned >= EVICTION_SCAN) break;
    }
    const oldest = this.entries.keys().next();
    if (!oldest.done) this.entries.delete(oldest.value);
  }
}
