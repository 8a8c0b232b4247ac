import type { SessionInfo, UserRecord } from '../../core/records.js';
import type { SessionTimes } from '../../core/session-flows.js';
import type { UserSecretsRecord } from '../../core/user-secrets.js';

/* The memory store's records: a user, and a session sized for millions of them. */

/** Client address and user agent as seen at login: shared by the many sessions that have the same. */
export interface ClientSeen {
  readonly address: string;
  readonly userAgent: string;
}
/** The token rotated last, kept for the reuse interval so a retry gets the same successor. */
export interface PreviousToken {
  readonly hash: string;
  readonly rotatedAt: number;
  readonly sealed: string;
}

export class UserEntry {
  /** Newest session first; ended sessions leave it when the store next looks. */
  head: SessionEntry | undefined;
  deleted = false;
  /** The skeleton the user claimed at creation (see usernameSkeleton), if any. */
  skeleton: string | undefined;
  /** The user's secrets document (second factor, recovery and reset codes): gone with the user. */
  secrets: UserSecretsRecord | undefined;

  constructor(public record: UserRecord) {}

  replace(record: UserRecord): void {
    this.record = record;
  }
}

/**
 * A session in memory, sized for millions of them (bench: `npm run bench`, "Memory store"): one
 * object in one map, the same size however often it rotates. Times are whole seconds plus one
 * small integer that packs three millisecond remainders: V8 boxes every number that is not a
 * small integer in a 16-byte object of its own per field, and epoch milliseconds never are small
 * (after 2038 seconds are boxed too, and stay exact).
 */
export class SessionEntry {
  next: SessionEntry | undefined;
  /** The current refresh token: its generation and hash. */
  generation = 0;
  tokenHash: string;
  previous: PreviousToken | undefined;
  lastRefreshedSeconds: number;
  private createdSeconds: number;
  private expiresSeconds: number;
  private tokenExpiresSeconds: number;
  private millis: number;

  constructor(
    readonly id: string,
    readonly user: UserEntry,
    /** The user's generation when the session began (or was kept): a revoke-all moves the user's past it. */
    public userGeneration: number,
    readonly seen: ClientSeen,
    tokenHash: string,
    createdAt: number,
    expiresAt: number,
    tokenExpiresAt: number,
    /** How the user authenticated: one of a few shared frozen lists. */
    readonly amr: readonly string[],
  ) {
    this.tokenHash = tokenHash;
    this.createdSeconds = Math.floor(createdAt / 1000);
    this.expiresSeconds = Math.floor(expiresAt / 1000);
    this.tokenExpiresSeconds = Math.floor(tokenExpiresAt / 1000);
    this.lastRefreshedSeconds = this.createdSeconds;
    this.millis = createdAt - this.createdSeconds * 1000 + 1000 * (expiresAt - this.expiresSeconds * 1000) + 1e6 * (tokenExpiresAt - this.tokenExpiresSeconds * 1000);
  }

  get createdAt(): number {
    return this.createdSeconds * 1000 + (this.millis % 1000);
  }

  get expiresAt(): number {
    return this.expiresSeconds * 1000 + (Math.floor(this.millis / 1000) % 1000);
  }

  get tokenExpiresAt(): number {
    return this.tokenExpiresSeconds * 1000 + Math.floor(this.millis / 1e6);
  }

  set tokenExpiresAt(at: number) {
    this.tokenExpiresSeconds = Math.floor(at / 1000);
    this.millis = (this.millis % 1e6) + 1e6 * (at - this.tokenExpiresSeconds * 1000);
  }

  /**
   * Active: within its lifetime and not idle past its last refresh token plus `graceMs` (when no
   * access token of it can be valid any more), its user there and enabled, not ended by a revoke-all.
   */
  active(now: number, graceMs: number): boolean {
    const user = this.user;
    return now < this.expiresAt && now < this.tokenExpiresAt + graceMs && !user.deleted && !user.record.disabled && this.userGeneration >= user.record.generation;
  }

  times(now: number): SessionTimes {
    return { now, expiresAt: this.expiresAt, refreshExpiresAt: this.tokenExpiresAt, authTime: this.createdAt, amr: this.amr };
  }

  info(): SessionInfo {
    return {
      id: this.id,
      userId: this.user.record.id,
      createdAt: this.createdAt,
      lastRefreshedAt: Math.max(this.lastRefreshedSeconds * 1000, this.createdAt),
      expiresAt: this.expiresAt,
      refreshExpiresAt: this.tokenExpiresAt,
      clientAddress: this.seen.address,
      userAgent: this.seen.userAgent,
    };
  }
}
