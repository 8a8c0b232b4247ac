import type { Clock } from '../clock.js';
import { AuthError } from '../errors.js';

/** How failed logins slow further attempts down, per key (an account, a client address). */
export interface BackoffPolicy {
  /** Failures allowed before any wait. */
  readonly freeFailures: number;
  /** Wait after the first counted failure; doubles with each further one. */
  readonly baseDelayMs: number;
  /** The wait never grows past this, so a real user is never kept out long. */
  readonly maxDelayMs: number;
  /** NIST SP 800-63B section 5.2.2: at most this many consecutive failures; past it, no attempts until the count expires. */
  readonly maxFailures: number;
  /** A count is forgotten this long after its last attempt. */
  readonly windowMs: number;
}

/** Milliseconds after the last attempt before another one is allowed, given the failures so far. */
export function backoffDelay(failures: number, policy: BackoffPolicy): number {
  if (failures >= policy.maxFailures) return policy.windowMs;
  if (failures < policy.freeFailures) return 0;
  return Math.min(policy.baseDelayMs * 2 ** Math.min(failures - policy.freeFailures, 30), policy.maxDelayMs);
}

export type AttemptOutcome = 'failed' | 'succeeded' | 'released';

export type AttemptGrant = { readonly allowed: true } | { readonly allowed: false; readonly retryAt: number };

/**
 * The throttle's storage port: login attempts per key, reserved atomically so that a burst of
 * parallel guesses is throttled like a sequence (attempts in flight count as failures until they
 * end). Shared by every instance when the store is.
 */
export interface AttemptStore {
  /**
   * Allows the attempt when `now` is past the back-off of (failures + attempts in flight) since
   * the last attempt, and then records it as in flight; otherwise changes nothing.
   */
  beginAttempt(key: string, now: number, policy: BackoffPolicy): Promise<AttemptGrant>;
  /** Ends an allowed attempt: a failure is counted, a success clears the key, a release only ends it. */
  endAttempt(key: string, now: number, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void>;
}

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
