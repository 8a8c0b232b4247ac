import type { Clock } from '../clock.js';
import { AuthError } from '../errors.js';
import { type AttemptOutcome, type AttemptStore, type BackoffPolicy } from '../store/store.js';

export const ACCOUNT_POLICY: BackoffPolicy = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 15 * 60_000, maxFailures: 100, windowMs: 24 * 3_600_000 };
/** A client address may try many accounts (a shared NAT), so it gets more room before delays. */
export const ADDRESS_POLICY: BackoffPolicy = { freeFailures: 20, baseDelayMs: 1000, maxDelayMs: 15 * 60_000, maxFailures: 1000, windowMs: 3_600_000 };

export interface ThrottleKey {
  readonly key: string;
  readonly policy: BackoffPolicy;
}

/**
 * Throttles logins by key (an account, a client address) with exponential back-off, in the store
 * so every instance shares it. Each attempt is reserved before the password is hashed and counts
 * as a failure until it ends, so parallel guesses are throttled like sequential ones. Refused
 * attempts are not counted: an attacker's flood cannot lengthen a real user's wait. Unknown
 * usernames are keys like any other: whether an account exists never changes when throttling starts.
 */
export class LoginThrottle {
  constructor(
    private readonly store: AttemptStore,
    private readonly clock: Clock,
  ) {}

  /** Reserves an attempt on every key, or throws `throttled` with the wait (reserving nothing). */
  async begin(keys: readonly ThrottleKey[]): Promise<ThrottleAttempt> {
    const now = this.clock.now();
    const grants = await Promise.all(keys.map((k) => this.store.beginAttempt(k.key, now, k.policy)));
    const refused = grants.flatMap((g) => (g.allowed ? [] : [g.retryAt]));
    const end = (outcomeOf: (k: ThrottleKey) => AttemptOutcome, only = (_: number) => true) =>
      Promise.all(keys.map((k, i) => (only(i) ? this.store.endAttempt(k.key, this.clock.now(), k.policy, outcomeOf(k)) : undefined))).then(() => {});
    if (refused.length > 0) {
      await end(() => 'released', (i) => grants[i]!.allowed);
      const seconds = Math.ceil((Math.max(...refused) - now) / 1000);
      throw new AuthError('throttled', `too many failed logins; retry in ${seconds} s`, { retryAfterSeconds: seconds });
    }
    let ended = false;
    const once = (outcomeOf: (k: ThrottleKey) => AttemptOutcome) => {
      if (ended) return Promise.resolve();
      ended = true;
      return end(outcomeOf);
    };
    return {
      failed: () => once(() => 'failed'),
      // A success clears the account; the address's attempt simply ends.
      succeeded: (accountKey) => once((k) => (k.key === accountKey ? 'succeeded' : 'released')),
      release: () => once(() => 'released'),
    };
  }
}

export interface ThrottleAttempt {
  failed(): Promise<void>;
  succeeded(accountKey: string): Promise<void>;
  /** Ends the attempt without counting it (the call failed for another reason). Idempotent. */
  release(): Promise<void>;
}
