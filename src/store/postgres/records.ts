import type { LiveUser, UserOrigin, UserRecord } from '../../core/records.js';
import type { Credential, ServiceAccountRecord } from '../../core/service-accounts.js';
import { sharedAmr } from '../../core/amr.js';
import type { SessionRecord } from '../store.js';

/* The PostgreSQL store's rows and SQL fragments, and the core's records they make. */

/** The store's time in SQL: the test clock's when given as `$n`, else the database's (one clock for every instance). */
export const now = (n: number) => `coalesce($${n}::bigint, floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint)`;

/**
 * In a statement that writes, `$n` is the caller's deadline (DEADLINE in its values): past it the
 * statement fails and writes nothing (migration 0004), so a retry after UNAVAILABLE is safe. A
 * single statement checks it in its WHERE (it does not start late) and again in its RETURNING,
 * for each row it wrote: a WHERE is evaluated before the statement waits for a row's lock or a
 * unique key another transaction holds, and not again when that one rolls back, so only the
 * RETURNING sees a write that waited past its deadline. (A transaction checks it with its COMMIT.)
 */
export const onTime = (n: number) => `auth_on_time($${n}::bigint)`;

export const USER = 'id, username, password_hash, roles, disabled, generation, revision, origin, file_digest, created_at, password_changed_at';
export const ACCOUNT = 'id, name, roles, disabled, created_at, revision, credentials';
export const SESSION_INFO = 'id, user_id, created_at, last_refreshed_at, expires_at, token_expires_at, client_address, user_agent';
/** A session is active: within its lifetime, not idle past its refresh token plus the grace, its user enabled and not signed out since. (`n.now` and `$g` the grace.) */
export const ACTIVE = (grace: string) => `n.now < s.expires_at AND n.now < s.token_expires_at + ${grace} AND NOT u.disabled AND s.user_generation >= u.generation`;
/** The highest code point: every valid name that starts with a prefix sorts below prefix + this (an index bound for prefix scans). */
export const TOP = '\u{10FFFF}';

export interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  roles: string[];
  disabled: boolean;
  generation: number;
  revision: number;
  origin: string;
  file_digest: string | null;
  created_at: number;
  password_changed_at: number;
}

export interface AccountRow {
  id: string;
  name: string;
  roles: string[];
  disabled: boolean;
  created_at: number;
  revision: number;
  credentials: Credential[];
}

export function userOf(row: UserRow): UserRecord {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    roles: row.roles,
    createdAt: row.created_at,
    passwordChangedAt: row.password_changed_at,
    disabled: row.disabled,
    generation: row.generation,
    revision: row.revision,
    origin: row.origin as UserOrigin,
    fileDigest: row.file_digest ?? undefined,
  };
}

export function accountOf(row: AccountRow): ServiceAccountRecord {
  return { id: row.id, name: row.name, roles: row.roles, disabled: row.disabled, createdAt: row.created_at, revision: row.revision, credentials: row.credentials };
}

export function liveOf(row: { id: string; username: string; roles: string[]; revision: number }): LiveUser {
  return { id: row.id, username: row.username, roles: row.roles, revision: row.revision };
}

/** A row of auth_sessions as export and import read and write it. */
export interface SessionRow {
  id: string;
  user_generation: number;
  generation: number;
  token_hash: string;
  previous_hash: string | null;
  previous_rotated_at: number | null;
  previous_sealed: string | null;
  created_at: number;
  last_refreshed_at: number;
  expires_at: number;
  token_expires_at: number;
  client_address: string;
  user_agent: string;
  amr: string;
}

export function sessionOf(userId: string, r: SessionRow): SessionRecord {
  return {
    id: r.id,
    userId,
    userGeneration: r.user_generation,
    generation: r.generation,
    tokenHash: r.token_hash,
    previous: r.previous_hash !== null && r.previous_rotated_at !== null && r.previous_sealed !== null ? { hash: r.previous_hash, rotatedAt: r.previous_rotated_at, sealed: r.previous_sealed } : undefined,
    createdAt: r.created_at,
    lastRefreshedAt: r.last_refreshed_at,
    expiresAt: r.expires_at,
    tokenExpiresAt: r.token_expires_at,
    clientAddress: r.client_address,
    userAgent: r.user_agent,
    amr: sharedAmr(r.amr),
  };
}
