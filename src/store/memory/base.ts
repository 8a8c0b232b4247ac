import type { Clock } from '../../clock.js';
import type { ServiceAccountRecord } from '../../core/service-accounts.js';
import { AdminSet } from './admin-set.js';
import { AttemptTable } from './attempt-table.js';
import { BTree } from './btree.js';
import { RateTable } from './rate-table.js';
import { SessionEntry, UserEntry, type ClientSeen } from './records.js';

export interface MemoryStoreOptions {
  readonly clock: Clock;
  /**
   * How long a session's state outlives its last refresh token: long enough that every access
   * token of it has expired (the access-token TTL plus the clock skew).
   */
  readonly accessGraceMs: number;
  /** Active sessions one user may hold; a new login past it ends the user's oldest session. */
  readonly maxSessionsPerUser: number;
  /** Login-attempt counters held at most (see AttemptTable). */
  readonly maxAttemptEntries: number;
  /** Assertion ids (jti) held at most until they expire; past it new assertions are refused. */
  readonly maxAssertions?: number;
}

const SEEN_CACHE = 10_000;
/** Distinct role lists shared at most (beyond it, each user holds its own copy). */
const SHARED_ROLE_LISTS = 1000;

/**
 * The memory store's tables and the helpers its ports share. Everything is in this process,
 * nothing on disk; each operation runs to completion within one turn of the event loop, which
 * makes it atomic. A user owns their sessions (a list through the sessions themselves: no per-user
 * collection), so revoking all of them is one generation bump and listing them walks only theirs.
 */
export abstract class MemoryBase {
  protected readonly byId = new Map<string, UserEntry>();
  /** Users in username order: name lookups and ListUsers pages without a scan. */
  protected readonly byName = new BTree<string, UserEntry>();
  /** Users by the skeleton of their name: one user per look. */
  protected readonly bySkeleton = new Map<string, UserEntry>();
  protected readonly sessions = new Map<string, SessionEntry>();
  protected readonly attempts: AttemptTable;
  protected readonly seen = new Map<string, ClientSeen>();
  protected readonly roleLists = new Map<string, readonly string[]>();
  /** Enabled admins, users and service accounts together (the last-admin rule). */
  protected readonly admins = new AdminSet();
  /** The last version given to any user's secrets document (versions never repeat). */
  protected secretsVersion = 0;
  /** Ceremonies waiting for their answer (passkeys.ts), oldest first, at most MAX_CEREMONIES. */
  protected readonly ceremonies = new Map<string, { readonly body: string; readonly expiresAt: number }>();
  /** API keys by id (api-keys.ts); a deleted owner's go when next listed. */
  protected readonly apiKeys = new Map<string, import('../../core/api-keys.js').ApiKeyRecord>();
  /** Each owner's API key ids. */
  protected readonly apiKeysByOwner = new Map<string, Set<string>>();
  /** Which user each passkey's credential id belongs to. */
  protected readonly passkeyOwners = new Map<string, string>();
  /** The maintenance switch (maintenance.ts). */
  protected maintenance = false;
  /** Registration and reset counters: a few per client address (see RateTable). */
  protected readonly rates = new RateTable(100_000);
  /** Service accounts by id, and their ids in name order for listing. */
  protected readonly accountsById = new Map<string, ServiceAccountRecord>();
  protected readonly accountsByName = new BTree<string, string>();
  /** The jti of every assertion used (`<account>:<jti>`), until it expires. */
  protected readonly assertions = new Map<string, number>();
  protected readonly maxAssertions: number;

  constructor(protected readonly options: MemoryStoreOptions) {
    this.attempts = new AttemptTable(options.maxAttemptEntries);
    this.maxAssertions = options.maxAssertions ?? 100_000;
  }

  protected now(): number {
    return this.options.clock.now();
  }

  protected sessionOf(userId: string, sessionId: string): SessionEntry | undefined {
    const session = this.sessions.get(sessionId);
    return session !== undefined && session.user.record.id === userId ? session : undefined;
  }

  protected removeSession(session: SessionEntry): void {
    this.sessions.delete(session.id);
    // Unlinked from its user's list the next time that list is walked.
  }

  /** Walks a user's list: ended sessions leave the list (and the map); `each` sees the active ones. */
  protected pruneSessions(user: UserEntry, now: number, each: (s: SessionEntry) => void): void {
    let previous: SessionEntry | undefined;
    for (let s = user.head; s; s = s.next) {
      const present = this.sessions.get(s.id) === s;
      if (present && s.active(now, this.options.accessGraceMs)) {
        each(s);
        previous = s;
        continue;
      }
      if (present) this.sessions.delete(s.id);
      if (previous) previous.next = s.next;
      else user.head = s.next;
    }
  }

  /** One frozen array per distinct role list: most users share a handful of them. */
  protected rolesOf(roles: readonly string[]): readonly string[] {
    const key = roles.join(',');
    let shared = this.roleLists.get(key);
    if (!shared) {
      shared = Object.freeze([...roles]);
      if (this.roleLists.size < SHARED_ROLE_LISTS) this.roleLists.set(key, shared);
    }
    return shared;
  }

  protected seenOf(address: string, userAgent: string): ClientSeen {
    const key = `${address}\0${userAgent}`;
    let seen = this.seen.get(key);
    if (!seen) {
      seen = Object.freeze({ address, userAgent });
      if (this.seen.size < SEEN_CACHE) this.seen.set(key, seen);
    }
    return seen;
  }

  /** Drops expired assertion ids. */
  protected sweepAssertions(now: number): void {
    for (const [key, expiresAt] of this.assertions) if (now >= expiresAt) this.assertions.delete(key);
  }
}
