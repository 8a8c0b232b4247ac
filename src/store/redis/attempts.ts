import type { AttemptGrant, AttemptGuard, AttemptOutcome, BackoffPolicy } from '../../core/login-throttle.js';
import { RedisBase, type Args, type RedisClient, type Script } from './base.js';
import { CLOCK } from './lua.js';

/** The back-off of a count, as backoffDelay() in core/login-throttle.ts. ARGV[2..6]: free, base, maxDelay, maxFailures, window. */
const BACKOFF = `
local function backoff(n)
  local free, base, maxDelay, maxFailures, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  if n >= maxFailures then return window end
  if n < free then return 0 end
  return math.min(base * 2 ^ math.min(n - free, 30), maxDelay)
end
local function keep(failures)
  if failures >= tonumber(ARGV[2]) then return tonumber(ARGV[6]) end
  return tonumber(ARGV[7])
end
`;

/**
 * KEYS: attempts. ARGV: now, free, base, maxDelay, maxFailures, window, shortWindow, mode
 * ('check' | 'begin'), in-flight lease. Returns 0 when allowed (a begin records the attempt in
 * flight), else the milliseconds to wait; -1 when a begin that would reserve runs after the
 * caller stopped waiting (see CLOCK's late()): it reserves nothing, as the caller was told
 * UNAVAILABLE and has no attempt to end. 'check' counts failures only and writes nothing.
 * Attempts in flight ('i') count until 'u', the newest one's start plus the lease.
 */
const BEGIN_ATTEMPT = `${CLOCK}${BACKOFF}
local t = now()
local a = redis.call('HMGET', KEYS[1], 'f', 'i', 'l', 'x', 'u')
local failures, inFlight, last = 0, 0, t
if a[1] and t < tonumber(a[4]) then
  failures, inFlight, last = tonumber(a[1]), tonumber(a[2]), tonumber(a[3])
  if not a[5] or t >= tonumber(a[5]) then inFlight = 0 end
end
local n = failures
if ARGV[8] == 'begin' then n = failures + inFlight end
local retryAt = last + backoff(n)
if n > 0 and t < retryAt then return retryAt - t end
if ARGV[8] == 'check' then return 0 end
if late() then return -1 end
redis.call('HSET', KEYS[1], 'f', failures, 'i', inFlight + 1, 'l', last, 'x', t + tonumber(ARGV[6]), 'u', t + tonumber(ARGV[9]))
redis.call('PEXPIREAT', KEYS[1], t + tonumber(ARGV[6]))
return 0
`;

/**
 * KEYS: attempts. ARGV: now, free, base, maxDelay, maxFailures, window, shortWindow, outcome
 * ('failed' | 'succeeded' | 'released' | 'record', a failure with nothing in flight). Returns 0,
 * or -1 for a success that runs late: it clears nothing (as on PostgreSQL), where clearing would
 * drop failures counted meanwhile; its attempt lapses with the lease. A late failure still counts
 * (it was one) and a late release still releases.
 */
const END_ATTEMPT = `${CLOCK}${BACKOFF}
if ARGV[8] == 'succeeded' then
  if late() then return -1 end
  redis.call('DEL', KEYS[1])
  return 0
end
local t = now()
local a = redis.call('HMGET', KEYS[1], 'f', 'i', 'x', 'u')
local failures, inFlight = 0, 0
if a[1] and t < tonumber(a[3]) then
  failures, inFlight = tonumber(a[1]), tonumber(a[2])
  if not a[4] or t >= tonumber(a[4]) then inFlight = 0 end
end
if ARGV[8] ~= 'record' then inFlight = math.max(0, inFlight - 1) end
if ARGV[8] == 'released' then
  if not a[1] then return 0 end
  if failures == 0 and inFlight == 0 then redis.call('DEL', KEYS[1]) else redis.call('HSET', KEYS[1], 'i', inFlight) end
  return 0
end
failures = failures + 1
local x = t + keep(failures)
redis.call('HSET', KEYS[1], 'f', failures, 'i', inFlight, 'l', t, 'x', x)
redis.call('PEXPIREAT', KEYS[1], x)
return 0
`;

/** The commands RedisAttempts's scripts add to the client. */
interface Commands {
  authBeginAttempt(...args: Args): Promise<number>;
  authEndAttempt(...args: Args): Promise<number>;
}

const run = (redis: RedisClient) => redis as RedisClient & Commands;

/** Login-attempt counters, one hash each, counted and judged by the scripts on Redis's clock. */
export class RedisAttempts extends RedisBase {
  static readonly scripts: Record<keyof Commands, Script> = {
    authBeginAttempt: { keys: 1, lua: BEGIN_ATTEMPT },
    authEndAttempt: { keys: 1, lua: END_ATTEMPT },
  };

  protected policyArgs(policy: BackoffPolicy): Args {
    return [policy.freeFailures, policy.baseDelayMs, policy.maxDelayMs, policy.maxFailures, policy.windowMs, policy.shortWindowMs];
  }

  protected async attempt(key: string, policy: BackoffPolicy, mode: 'check' | 'begin'): Promise<AttemptGrant> {
    const wait = this.notLate(await this.call(() => run(this.redis).authBeginAttempt(this.attemptKey(key), this.clockArg(), ...this.policyArgs(policy), mode, policy.inFlightLeaseMs)));
    return Number(wait) === 0 ? { allowed: true } : { allowed: false, retryAfterMs: Number(wait) };
  }

  checkAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    return this.attempt(key, policy, 'check');
  }

  beginAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    return this.attempt(key, policy, 'begin');
  }

  /** The guard is a command of its own (two round trips, as before): its key may live on another node of a cluster than the attempt's. */
  async beginGuardedAttempt(key: string, policy: BackoffPolicy, guard: AttemptGuard): Promise<AttemptGrant> {
    const held = await this.attempt(guard.key, guard.policy, 'check');
    return held.allowed ? this.attempt(key, policy, 'begin') : held;
  }

  async endAttempt(key: string, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void> {
    this.notLate(await this.call(() => run(this.redis).authEndAttempt(this.attemptKey(key), this.clockArg(), ...this.policyArgs(policy), outcome)));
  }

  async recordFailure(key: string, policy: BackoffPolicy): Promise<void> {
    await this.call(() => run(this.redis).authEndAttempt(this.attemptKey(key), this.clockArg(), ...this.policyArgs(policy), 'record'));
  }

  async resetAttempts(key: string): Promise<void> {
    await this.call(() => this.redis.del(this.attemptKey(key)));
  }
}
