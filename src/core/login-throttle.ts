import { isIPv6 } from 'node:net';
import { AuthError } from '../errors.js';
import type { FlowContext } from './events.js';
import { sha256 } from './sha256.js';

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
  /** A count of at least `freeFailures` is forgotten this long after its last failure. */
  readonly windowMs: number;
  /** A count below `freeFailures` (nothing is held back yet) is forgotten sooner. */
  readonly shortWindowMs: number;
  /**
   * An attempt in flight counts for at most this long after the newest one began: a login whose
   * end never reached the store (the store failed, the process died) cannot hold the key back
   * beyond it. Far longer than a login takes (hashing included).
   */
  readonly inFlightLeaseMs: number;
}

/** Milliseconds after the last failure before another attempt is allowed, given the count. */
export function backoffDelay(count: number, policy: BackoffPolicy): number {
  if (count >= policy.maxFailures) return policy.windowMs;
  if (count < policy.freeFailures) return 0;
  return Math.min(policy.baseDelayMs * 2 ** Math.min(count - policy.freeFailures, 30), policy.maxDelayMs);
}

/** How long a count is kept after its last failure. */
export function retention(failures: number, policy: BackoffPolicy): number {
  return failures >= policy.freeFailures ? policy.windowMs : policy.shortWindowMs;
}

export type AttemptOutcome = 'failed' | 'succeeded' | 'released';

/** Refusals say how long to wait, reckoned on the store's clock. */
export type AttemptGrant = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number };

/** A key asked before an attempt is reserved, counting its failures only (the caller's address). */
export interface AttemptGuard {
  readonly key: string;
  readonly policy: BackoffPolicy;
}

/**
 * The throttle's storage port, shared by every instance when the store is. Times are the
 * store's own (Redis's clock on Redis), so instances with skewed clocks agree.
 */
export interface AttemptStore {
  /** Is an attempt on `key` allowed now, counting failures only? Writes nothing. */
  checkAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant>;
  /**
   * Reserves an attempt in flight when it is allowed, counting failures and attempts in flight
   * (so parallel guesses are throttled like a sequence); otherwise changes nothing.
   */
  beginAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant>;
  /**
   * `beginAttempt` after asking `guard` (the caller's address) as `checkAttempt` asks it, in one
   * operation: while the guard's failures hold it back, its refusal is the answer and nothing is
   * written anywhere. A store may read both keys at once (PostgreSQL: one statement, where the
   * two calls took two round trips). Required of every store: one of the interface's earlier
   * shape fails to compile, or (in JavaScript) is refused at start-up by guardStore, rather than
   * fail every throttled call.
   */
  beginGuardedAttempt(key: string, policy: BackoffPolicy, guard: AttemptGuard): Promise<AttemptGrant>;
  /** Ends a reserved attempt: a failure is counted, a success clears the key, a release only ends it. */
  endAttempt(key: string, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void>;
  /** Counts one failure on a key that reserves nothing (a client address). */
  recordFailure(key: string, policy: BackoffPolicy): Promise<void>;
  /** Forgets a key (an admin's ResetLoginThrottle). */
  resetAttempts(key: string): Promise<void>;
}

export const ACCOUNT_POLICY: BackoffPolicy = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 15 * 60_000, maxFailures: 100, windowMs: 24 * 3_600_000, shortWindowMs: 3_600_000, inFlightLeaseMs: 60_000 };
/** A client address may try many accounts (a shared NAT, a proxy), so it gets more room before delays. */
export const ADDRESS_POLICY: BackoffPolicy = { freeFailures: 20, baseDelayMs: 1000, maxDelayMs: 15 * 60_000, maxFailures: 1000, windowMs: 3_600_000, shortWindowMs: 3_600_000, inFlightLeaseMs: 60_000 };

/**
 * The account key of a (normalised) username: a fixed-size digest, so however long or odd a name
 * an attacker sends, an entry costs the same. Unknown names are keys like any other: whether an
 * account exists never changes when throttling starts.
 */
export function accountKey(name: string): string {
  return `acct:${sha256(name, 'base64url').slice(0, 22)}`;
}

/** The address key: an IPv4 address (also when written IPv4-mapped), or the /64 of an IPv6 one (a host holds a whole /64). */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return `addr:${mapped[1]}`;
  // Only an IPv6 address has a colon: the rest never meet node's (long) IPv6 expression.
  if (!address.includes(':') || !isIPv6(address)) return `addr:${address}`;
  const full = expandIPv6(address);
  return `addr:${full.slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  return [...left, ...Array<string>(Math.max(0, missing)).fill('0'), ...right].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}

/**
 * Throttles logins with exponential back-off, per account and per client address, in the store.
 * The address is asked first and counts only failures: a flood the address throttle refuses
 * leaves no state behind, and honest logins in flight from one address (a proxy, a NAT) never
 * hold each other back. The account then reserves the attempt before the password is hashed,
 * so parallel guesses at one account are throttled like sequential ones. Refused attempts count
 * nowhere: a flood cannot lengthen a real user's wait.
 */
export class LoginThrottle {
  constructor(private readonly store: AttemptStore) {}

  /**
   * Reserves an attempt for `name` from the caller's address, or throws `throttled` with the wait.
   * `per: 'name-and-address'` counts the name's failures per client address: for names that are
   * public (a service account's client id is the `sub` of every token it sends), where failures
   * counted on the name alone would let anyone lock its owner out from elsewhere.
   */
  async begin(name: string, ctx: Pick<FlowContext, 'clientAddress' | 'log'>, per: 'name' | 'name-and-address' = 'name'): Promise<ThrottleAttempt> {
    const address = addressOf(ctx);
    const account = accountKey(per === 'name-and-address' && address !== undefined ? `${name}\u0000${address}` : name);
    // The address is asked in the same store operation, before the account's reservation.
    const grant =
      address === undefined
        ? await this.store.beginAttempt(account, ACCOUNT_POLICY)
        : await this.store.beginGuardedAttempt(account, ACCOUNT_POLICY, { key: address, policy: ADDRESS_POLICY });
    if (!grant.allowed) refusal(ctx, grant.retryAfterMs);
    let ended = false;
    const once = (end: () => Promise<unknown>) => {
      if (ended) return Promise.resolve();
      ended = true;
      return end().then(() => {});
    };
    return {
      failed: () =>
        once(() =>
          Promise.all([this.store.endAttempt(account, ACCOUNT_POLICY, 'failed'), address === undefined ? undefined : this.store.recordFailure(address, ADDRESS_POLICY)]),
        ),
      // A success clears the account; the address keeps its count (another account may be under attack).
      succeeded: () => once(() => this.store.endAttempt(account, ACCOUNT_POLICY, 'succeeded')),
      release: () => once(() => this.store.endAttempt(account, ACCOUNT_POLICY, 'released')),
    };
  }

  /** Refuses (`throttled`) when the caller's address is held back; counts nothing. */
  async checkAddress(ctx: Pick<FlowContext, 'clientAddress' | 'log'>): Promise<void> {
    const address = addressOf(ctx);
    if (address === undefined) return;
    const grant = await this.store.checkAttempt(address, ADDRESS_POLICY);
    if (!grant.allowed) refusal(ctx, grant.retryAfterMs);
  }

  /** Counts a failure against the caller's address alone (a forged token: no account to count it on). */
  async addressFailed(ctx: Pick<FlowContext, 'clientAddress'>): Promise<void> {
    const address = addressOf(ctx);
    if (address !== undefined) await this.store.recordFailure(address, ADDRESS_POLICY);
  }

  /** Lets a locked-out account in again. */
  reset(name: string): Promise<void> {
    return this.store.resetAttempts(accountKey(name));
  }
}

/** The caller's address as the throttles and rate limits key it (IPv6 by /64), or undefined when unknown. */
export function addressOf(ctx: Pick<FlowContext, 'clientAddress'>): string | undefined {
  return ctx.clientAddress !== undefined && ctx.clientAddress !== 'unknown' ? addressKey(ctx.clientAddress) : undefined;
}

function refusal(ctx: Pick<FlowContext, 'log'>, retryAfterMs: number): never {
  ctx.log.warn({ event: 'login_throttled' }, 'login throttled');
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  throw new AuthError('throttled', `too many failed logins; retry in ${seconds} s`, { retryAfterSeconds: seconds });
}

export interface ThrottleAttempt {
  failed(): Promise<void>;
  succeeded(): Promise<void>;
  /** Ends the attempt without counting it (the call failed for another reason). Idempotent. */
  release(): Promise<void>;
}
