import { backoffDelay, retention, type AttemptGrant, type AttemptOutcome, type BackoffPolicy } from '../core/login-throttle.js';

/** One key's login attempts. */
export interface AttemptEntry {
  readonly failures: number;
  readonly inFlight: number;
  /** When the attempts in flight stop counting: the newest one's start plus the policy's lease. */
  readonly inFlightUntil: number;
  readonly lastFailureAt: number;
  readonly expiresAt: number;
}

/**
 * The login throttle's rules as pure functions of one key's entry and the store's time, shared by
 * the stores that keep entries as records (memory, PostgreSQL): each store only makes reading the
 * entry and writing the result one atomic step. `undefined` is "no entry" (never failed, or
 * expired); a `next` of null deletes the entry.
 */

/** The attempts in flight that still count: none once the lease of the newest has run out (their ends were lost). */
export function heldInFlight(entry: AttemptEntry, now: number): number {
  return now < entry.inFlightUntil ? entry.inFlight : 0;
}

/** Is an attempt allowed now, counting failures only? */
export function checkRule(entry: AttemptEntry | undefined, now: number, policy: BackoffPolicy): AttemptGrant {
  const retryAt = entry ? entry.lastFailureAt + backoffDelay(entry.failures, policy) : 0;
  return now < retryAt ? { allowed: false, retryAfterMs: retryAt - now } : { allowed: true };
}

/** Reserves an attempt in flight when allowed (failures and attempts in flight both count); otherwise nothing changes. */
export function beginRule(entry: AttemptEntry | undefined, now: number, policy: BackoffPolicy): { grant: AttemptGrant; next: AttemptEntry | undefined } {
  const held = entry ? heldInFlight(entry, now) : 0;
  const retryAt = entry ? entry.lastFailureAt + backoffDelay(entry.failures + held, policy) : 0;
  if (now < retryAt) return { grant: { allowed: false, retryAfterMs: retryAt - now }, next: undefined };
  // Attempts in flight count until their ends come, or until the lease of the newest runs out.
  return {
    grant: { allowed: true },
    next: { failures: entry?.failures ?? 0, inFlight: held + 1, inFlightUntil: now + policy.inFlightLeaseMs, lastFailureAt: entry?.lastFailureAt ?? now, expiresAt: now + policy.windowMs },
  };
}

/**
 * Whether this end deletes the key's entry whatever it holds (a success forgets the failures and
 * the other attempts in flight alike): a store may then delete without reading the entry first.
 */
export function endClears(outcome: AttemptOutcome): boolean {
  return outcome === 'succeeded';
}

/** Ends a reserved attempt: a failure counts, a success clears the key, a release only ends it. Undefined: nothing to write. */
export function endRule(entry: AttemptEntry | undefined, now: number, policy: BackoffPolicy, outcome: AttemptOutcome): AttemptEntry | null | undefined {
  if (!entry) return undefined;
  if (endClears(outcome)) return null;
  const inFlight = Math.max(0, heldInFlight(entry, now) - 1);
  if (outcome === 'released') return inFlight === 0 && entry.failures === 0 ? null : { ...entry, inFlight };
  const failures = entry.failures + 1;
  return { failures, inFlight, inFlightUntil: entry.inFlightUntil, lastFailureAt: now, expiresAt: now + retention(failures, policy) };
}

/** Counts one failure on a key that reserves nothing (a client address). */
export function recordRule(entry: AttemptEntry | undefined, now: number, policy: BackoffPolicy): AttemptEntry {
  const failures = (entry?.failures ?? 0) + 1;
  return { failures, inFlight: 0, inFlightUntil: 0, lastFailureAt: now, expiresAt: now + retention(failures, policy) };
}
