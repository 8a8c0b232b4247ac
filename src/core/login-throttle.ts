import type { Clock } from '../clock.js';
import { AuthError } from '../errors.js';
import type { FailureStore } from '../store/store.js';

/** How failed logins slow further attempts down, per key (an account, a client address). */
export interface ThrottlePolicy {
  /** Failures allowed before any delay. */
  readonly freeFailures: number;
  /** Delay after the first counted failure; doubles with each further one. */
  readonly baseDelayMs: number;
  /** The delay never grows past this, so a real user is never kept out long. */
  readonly maxDelayMs: number;
  /** NIST SP 800-63B section 5.2.2: at most 100 consecutive failures; past it, no more guesses until the count expires. */
  readonly maxFailures: number;
  /** A count is forgotten this long after its last failure. */
  readonly windowMs: number;
}

export const ACCOUNT_POLICY: ThrottlePolicy = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 15 * 60_000, maxFailures: 100, windowMs: 24 * 3_600_000 };
/** A client address may try many accounts (a shared NAT), so it gets more room before delays. */
export const ADDRESS_POLICY: ThrottlePolicy = { freeFailures: 20, baseDelayMs: 1000, maxDelayMs: 15 * 60_000, maxFailures: 1000, windowMs: 3_600_000 };

/** Milliseconds after the last failure before the next attempt is allowed. */
export function delayAfter(failures: number, policy: ThrottlePolicy): number {
  if (failures >= policy.maxFailures) return policy.windowMs;
  if (failures < policy.freeFailures) return 0;
  return Math.min(policy.baseDelayMs * 2 ** Math.min(failures - policy.freeFailures, 30), policy.maxDelayMs);
}

export interface ThrottleKey {
  readonly key: string;
  readonly policy: ThrottlePolicy;
}

/**
 * Counts failed logins in the store (so every instance sees them) and refuses attempts that come
 * before their back-off has passed, with `throttled` and the wait in seconds. Unknown usernames
 * are keys like any other: whether an account exists never changes when throttling starts.
 */
export class LoginThrottle {
  constructor(
    private readonly store: FailureStore,
    private readonly clock: Clock,
  ) {}

  async check(keys: readonly ThrottleKey[]): Promise<void> {
    const now = this.clock.now();
    const counts = await Promise.all(keys.map(({ key }) => this.store.getFailures(key, now)));
    let retryAt = 0;
    counts.forEach((count, i) => {
      if (count) retryAt = Math.max(retryAt, count.lastAt + delayAfter(count.count, keys[i]!.policy));
    });
    if (retryAt > now) {
      const seconds = Math.ceil((retryAt - now) / 1000);
      throw new AuthError('throttled', `too many failed logins; retry in ${seconds} s`, { retryAfterSeconds: seconds });
    }
  }

  async recordFailure(keys: readonly ThrottleKey[]): Promise<void> {
    const now = this.clock.now();
    await Promise.all(keys.map(({ key, policy }) => this.store.recordFailure(key, now, policy.windowMs)));
  }

  async reset(key: string): Promise<void> {
    await this.store.resetFailures(key);
  }
}
