/**
 * The memory store's fixed-window counters (registrations per address and overall), bounded to
 * `capacity` keys. Keys are a handful of fixed names and client addresses (IPv6 by /64). At the
 * cap, expired windows go first, then the oldest key: forgetting a key lets its address register
 * a little early, and the overall ceiling still holds.
 */
export class RateTable {
  private readonly windows = new Map<string, { count: number; endsAt: number }>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.windows.size;
  }

  hit(key: string, limit: number, windowMs: number, now: number): { allowed: boolean; retryAfterMs: number } {
    let window = this.windows.get(key);
    if (!window || now >= window.endsAt) {
      this.windows.delete(key);
      if (this.windows.size >= this.capacity) this.evict(now);
      const start = Math.floor(now / windowMs) * windowMs;
      window = { count: 0, endsAt: start + windowMs };
      this.windows.set(key, window);
    }
    if (window.count >= limit) return { allowed: false, retryAfterMs: window.endsAt - now };
    window.count++;
    return { allowed: true, retryAfterMs: 0 };
  }

  sweep(now: number): void {
    for (const [key, w] of this.windows) if (now >= w.endsAt) this.windows.delete(key);
  }

  private evict(now: number): void {
    this.sweep(now);
    if (this.windows.size >= this.capacity) this.windows.delete(this.windows.keys().next().value!);
  }
}
