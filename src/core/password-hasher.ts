import { hash, verify } from '@node-rs/argon2';
import { HashInputError, HashThreads } from './hash-threads.js';
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
  /** Password checks (logins) computed at once, each on a thread of its own (libuv's, or the hasher's with `lowPriority`). */
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
  /**
   * Hash on worker threads of the hasher's own that run below the main thread's priority (see
   * HashThreads), instead of the libuv pool: what the service does. `close` stops them.
   */
  readonly lowPriority?: boolean;
  /** With `lowPriority`: how many nice values below the process (default HASH_NICE, 10). */
  readonly nice?: number;
  /** With `lowPriority`: told once, when the first thread has started, whether the threads run below the main thread (Linux only). */
  readonly onPriority?: (lowered: boolean) => void;
}

// `Algorithm.Argon2id` is a const enum in @node-rs/argon2's typings; isolated-module builds
// cannot inline it, so the value is spelled out.
const ARGON2ID = 2;

/**
 * argon2id off the main thread (the libuv pool, or low-priority threads of its own), with bounded
 * concurrency. The dummy hash is made once with the same parameters, so an unknown user costs
 * what a known one does.
 */
export class Argon2Hasher implements PasswordHasher {
  private readonly limiter: ConcurrencyLimiter;
  private readonly newHashes: ConcurrencyLimiter;
  private readonly threads: HashThreads | undefined;
  private dummyHash: Promise<string> | undefined;

  constructor(private readonly options: Argon2HasherOptions) {
    const newHashConcurrency = options.newHashConcurrency ?? Math.max(1, Math.floor(options.concurrency / 2));
    this.limiter = new ConcurrencyLimiter(options.concurrency, options.maxQueue);
    this.newHashes = new ConcurrencyLimiter(newHashConcurrency, options.newHashQueue ?? 16, 'too many password changes in progress; retry shortly');
    // One thread for each hash the two limiters let run at once, so none waits for a thread.
    this.threads = options.lowPriority ? new HashThreads(options.concurrency + newHashConcurrency, options.onPriority, undefined, options.nice) : undefined;
  }

  /** Stops the hasher's own threads (with `lowPriority`); a later hash starts them again. */
  close(): Promise<void> {
    return this.threads?.close() ?? Promise.resolve();
  }

  private newHash(password: string): Promise<string> {
    const { memoryCost, timeCost, parallelism } = this.options;
    const options = { algorithm: ARGON2ID, memoryCost, timeCost, parallelism };
    return this.threads ? (this.threads.run({ op: 'hash', password, options }) as Promise<string>) : hash(password, options);
  }

  private check(passwordHash: string, password: string): Promise<boolean> {
    return this.threads ? (this.threads.run({ op: 'verify', hash: passwordHash, password }) as Promise<boolean>) : verify(passwordHash, password);
  }

  /** Hashes running and waiting for a slot (logins' checks and new hashes together), for the metrics. */
  get load(): { running: number; queued: number } {
    return { running: this.limiter.active + this.newHashes.active, queued: this.limiter.pending + this.newHashes.pending };
  }

  hash(password: string): Promise<string> {
    return this.newHashes.run(() => this.newHash(password));
  }

  verify(passwordHash: string, password: string): Promise<boolean> {
    // A hash that cannot be parsed is a no; no thread to hash on is `unavailable` (thrown), never a no.
    return this.limiter.run(() =>
      this.check(passwordHash, password).catch((err: unknown) => {
        if (this.threads && !(err instanceof HashInputError)) throw err;
        return false;
      }),
    );
  }

  async verifyDummy(password: string): Promise<void> {
    // Made once; a failure (a hashing thread that stopped) is not kept, the next call tries again.
    this.dummyHash ??= this.newHash('dummy password for unknown users').catch((err: unknown) => {
      this.dummyHash = undefined;
      throw err;
    });
    await this.verify(await this.dummyHash, password);
  }
}
