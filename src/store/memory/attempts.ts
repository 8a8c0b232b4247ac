import type { AttemptGrant, AttemptGuard, AttemptOutcome, BackoffPolicy } from '../../core/login-throttle.js';
import { beginRule, checkRule, endRule, recordRule } from '../attempt-rules.js';
import { MemoryBase } from './base.js';

/** Login-attempt counters (the shared rules over the bounded AttemptTable). */
export class MemoryAttempts extends MemoryBase {
  async checkAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    const now = this.now();
    return checkRule(this.attempts.get(key, now), now, policy);
  }

  async beginAttempt(key: string, policy: BackoffPolicy): Promise<AttemptGrant> {
    return this.begin(key, policy, this.now());
  }

  async beginGuardedAttempt(key: string, policy: BackoffPolicy, guard: AttemptGuard): Promise<AttemptGrant> {
    const now = this.now();
    const held = checkRule(this.attempts.get(guard.key, now), now, guard.policy);
    return held.allowed ? this.begin(key, policy, now) : held;
  }

  private begin(key: string, policy: BackoffPolicy, now: number): AttemptGrant {
    const { grant, next } = beginRule(this.attempts.get(key, now), now, policy);
    if (next) this.attempts.put(key, next, policy);
    return grant;
  }

  async endAttempt(key: string, policy: BackoffPolicy, outcome: AttemptOutcome): Promise<void> {
    const now = this.now();
    const next = endRule(this.attempts.get(key, now), now, policy, outcome);
    if (next === null) this.attempts.delete(key);
    else if (next) this.attempts.put(key, next, policy);
  }

  async recordFailure(key: string, policy: BackoffPolicy): Promise<void> {
    const now = this.now();
    this.attempts.put(key, recordRule(this.attempts.get(key, now), now, policy), policy);
  }

  async resetAttempts(key: string): Promise<void> {
    this.attempts.delete(key);
  }
}
