/**
 * The records the flows and the stores share. Times are milliseconds since the epoch.
 */
export interface UserRecord {
  readonly id: string;
  /** Normalised (NFKC, lower case). */
  readonly username: string;
  /** argon2id PHC string. */
  readonly passwordHash: string;
  readonly roles: readonly string[];
  readonly createdAt: number;
}

export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  readonly username: string;
  readonly roles: readonly string[];
  readonly createdAt: number;
  /** Absolute end of the session: no refresh token of it outlives this. */
  readonly expiresAt: number;
}
