/**
 * The records the flows and the stores share. Times are milliseconds since the epoch.
 */

/** Where a user came from: the users file is the source of truth for the users it lists. */
export type UserOrigin = 'api' | 'file';

export interface UserRecord {
  /** "usr_" and 22 base64url characters (16 bytes): refresh tokens carry it to find the user's data. */
  readonly id: string;
  /** Normalised (NFKC, lower case). */
  readonly username: string;
  /** argon2id PHC string. */
  readonly passwordHash: string;
  readonly roles: readonly string[];
  readonly createdAt: number;
  readonly passwordChangedAt: number;
  /** A disabled user cannot log in, and no token of theirs is active. */
  readonly disabled: boolean;
  /** Sessions started before the last revoke-all carry an older generation and are inactive. */
  readonly generation: number;
  /** Bumped by every change; a cached principal is good while its user's revision is unchanged. */
  readonly revision: number;
  readonly origin: UserOrigin;
  /** For file users: a digest of their line, so an edited line can be told from an unchanged one. */
  readonly fileDigest?: string | undefined;
}

/** What a new user needs; the store sets the times (on its clock), generation and revision. */
export type NewUser = Omit<UserRecord, 'generation' | 'revision' | 'createdAt' | 'passwordChangedAt'>;

/** A session as ListSessions shows it. */
export interface SessionInfo {
  readonly id: string;
  readonly userId: string;
  readonly createdAt: number;
  /** When its refresh token was last rotated (the creation time if never). */
  readonly lastRefreshedAt: number;
  /** Absolute end: no token of the session outlives it. */
  readonly expiresAt: number;
  /** When the current refresh token expires unless used. */
  readonly refreshExpiresAt: number;
  /** Seen at login. */
  readonly clientAddress: string;
  readonly userAgent: string;
}

/**
 * The live state of the user behind an active session: what Validate reports and the
 * interceptor enforces, read on every check so role changes take effect at once. A user record
 * is one (the memory store hands back the record itself); equal revisions mean equal answers.
 */
export type LiveUser = Pick<UserRecord, 'id' | 'username' | 'roles' | 'revision'>;
