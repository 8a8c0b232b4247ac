import { hash, verify } from '@node-rs/argon2';
import { ConcurrencyLimiter } from './limiter.js';

/** Hashes and checks passwords. The flows see only this interface. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** False for a wrong password and for a hash that cannot be parsed; never throws for those. */
  verify(passwordHash: string, password: string): Promise<boolean>;
  /** Spends the same time as `verify` against a real hash, for unknown users. */
  verifyDummy(password: string): Promise<void>;
}

/** The one hash form the service stores: an argon2id PHC string (users file, import, every new password). */
export const ARGON2ID_PHC = /^\$argon2id\$v=19\$m=\d{1,7},t=\d{1,3},p=\d{1,3}\$[A-Za-z0-9+/]{11,64}\$[A-Za-z0-9+/]{16,128}$/;

/** OWASP Password Storage Cheat Sheet, argon2id: m=19456 KiB, t=2, p=1. */
export const ARGON2ID_OWASP = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export interface Argon2HasherOptions {
  readonly memoryCost: number;
  readonly timeCost: number;
  readonly parallelism: number;
  /** Password checks (logins) computed at once, each on a libuv thread. */
  readonly concurrency: number;
  /** Checks that may wait for a thread before logins are refused as overloaded. */
  readonly maxQueue: number;
  /**
   * New hashes (Register, CreateUser, password changes) computed at once: a share of their own,
   * so a flood of registrations never takes the threads logins need. Default: half of `concurrency`, at least 1.
   */
  readonly newHashConcurrency?: number;
  /** New hashes that may wait; past it they are refused as overloaded. Default 16. */
  readonly newHashQueue?: number;
}

// `Algorithm.Argon2id` is a const enum in @node-rs/argon2's typings; isolated-module builds
// cannot inline it, so the value is spelled out.
const ARGON2ID = 2;

/**
 * argon2id on the libuv thread pool (off the main thread), with bounded concurrency. The dummy
 * hash is made once with the same parameters, so an unknown user costs what a known one does.
 */
export class Argon2Hasher implements PasswordHasher {
  private readonly limiter: ConcurrencyLimiter;
  private readonly newHashes: ConcurrencyLimiter;
  private dummyHash: Promise<string> | undefined;

  constructor(private readonly options: Argon2HasherOptions) {
    this.limiter = new ConcurrencyLimiter(options.concurrency, options.maxQueue);
    this.newHashes = new ConcurrencyLimiter(options.newHashConcurrency ?? Math.max(1, Math.floor(options.concurrency / 2)), options.newHashQueue ?? 16, 'too many password changes in progress; retry shortly');
  }

  /** Hashes running and waiting for a slot (logins' checks and new hashes together), for the metrics. */
  get load(): { running: number; queued: number } {
    return { running: this.limiter.active + this.newHashes.active, queued: this.limiter.pending + this.newHashes.pending };
  }

  hash(password: string): Promise<string> {
    const { memoryCost, timeCost, parallelism } = this.options;
    return this.newHashes.run(() => hash(password, { algorithm: ARGON2ID, memoryCost, timeCost, parallelism }));
  }

  verify(passwordHash: string, password: string): Promise<boolean> {
    return this.limiter.run(() => verify(passwordHash, password).catch(() => false));
  }

  async verifyDummy(password: string): Promise<void> {
    const { memoryCost, timeCost, parallelism } = this.options;
    this.dummyHash ??= hash('dummy password for unknown users', { algorithm: ARGON2ID, memoryCost, timeCost, parallelism });
    await this.verify(await this.dummyHash, password);
  }
}
