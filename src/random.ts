import { randomBytes, randomFillSync } from 'node:crypto';

/** Cryptographically secure random bytes, injected so tests can make them deterministic. */
export interface Random {
  bytes(size: number): Buffer;
}

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
