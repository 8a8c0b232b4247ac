import { randomBytes, randomFillSync } from 'node:crypto';

/** The wall clock, injected so tests move time instead of sleeping. Milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

/** Cryptographically secure random bytes, injected so tests can make them deterministic. */
export interface Random {
  bytes(size: number): Buffer;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * The system's CSPRNG, drawn from a pool refilled a few KiB at a time: each `randomBytes` call
 * costs a trip into OpenSSL and the kernel (about 6 µs here), and a refresh needs three small
 * draws. Every byte is handed out once and wiped from the pool as it goes; large requests bypass
 * the pool.
 */
export function pooledRandom(poolSize = 4096): Random {
  const pool = Buffer.alloc(poolSize);
  let offset = poolSize;
  return {
    bytes(size: number): Buffer {
      if (size > poolSize / 4) return randomBytes(size);
      if (offset + size > poolSize) {
        randomFillSync(pool);
        offset = 0;
      }
      const out = Buffer.from(pool.subarray(offset, offset + size));
      pool.fill(0, offset, offset + size);
      offset += size;
      return out;
    },
  };
}

export const systemRandom: Random = pooledRandom();

/** A clock that stands still until moved; for tests and for the test kit. */
export class ManualClock implements Clock {
  constructor(private current = Date.UTC(2030, 0, 1)) {}

  now(): number {
    return this.current;
  }

  advance(ms: number): void {
    this.current += ms;
  }

  set(ms: number): void {
    this.current = ms;
  }
}
