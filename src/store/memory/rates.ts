import { MemoryBase } from './base.js';

/** Fixed-window rate counters (registrations, reset requests). */
export class MemoryRates extends MemoryBase {
  async hitRate(key: string, limit: number, windowMs: number): Promise<{ allowed: boolean; retryAfterMs: number }> {
    return this.rates.hit(key, limit, windowMs, this.now());
  }
}
