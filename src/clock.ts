import { randomBytes } from 'node:crypto';

/** The wall clock, injected so tests move time instead of sleeping. Milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

/** Cryptographically secure random bytes, injected so tests can make them deterministic. */
export interface Random {
  bytes(size: number): Buffer;
}

export const systemClock: Clock = { now: () => Date.now() };

export const systemRandom: Random = { bytes: (size) => randomBytes(size) };

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
