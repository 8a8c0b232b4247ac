import type { AccountStore } from '../core/accounts.js';
import type { SessionLiveness } from '../core/introspector.js';
import type { AttemptStore } from '../core/login-throttle.js';
import type { ServiceAccountStore } from '../core/service-accounts.js';
import type { SessionStore } from '../core/session-flows.js';
import type { RateStore } from '../core/register.js';
import type { UserSecretStore } from '../core/user-secrets.js';
import type { PasskeyStore } from '../core/passkeys.js';
import type { ApiKeyStore } from '../core/api-keys.js';

export type { UserRecord, NewUser, SessionInfo, LiveUser } from '../core/records.js';
export type { NewSession, RotateRequest, RotateResult, SessionStore, CreateSessionResult } from '../core/session-flows.js';
export type { UserStore } from '../core/register.js';
export type { AccountStore, UserChange, UpdateResult, UserQuery } from '../core/accounts.js';
export type { AttemptGrant, AttemptGuard, AttemptOutcome, AttemptStore, BackoffPolicy } from '../core/login-throttle.js';
export type { SessionLiveness } from '../core/introspector.js';
export type { UserSecretStore, UserSecretsRecord } from '../core/user-secrets.js';
export type { PasskeyStore } from '../core/passkeys.js';
export type { ApiKeyStore, ApiKeyRecord } from '../core/api-keys.js';
export type { ServiceAccountStore, ServiceAccountRecord, Credential, ServiceAccountChange, ServiceAccountUpdate } from '../core/service-accounts.js';

/**
 * A storage backend: every port the core declares (users and accounts, sessions, session
 * liveness, login attempts), plus its lifecycle. Each port lives next to the flow that uses it;
 * one conformance suite (test/store/conformance/, a suite per port) runs against every implementation.
 *
 * Time is the store's own: the memory store reads its injected clock, the Redis store Redis's
 * clock, so instances whose clocks disagree still order shared events by one clock. Stores
 * signal an outage by rejecting with `AuthError('unavailable', ...)`.
 */
/**
 * A session as a store keeps it: what a move to another store carries (the refresh token's hash,
 * never the token), so sessions keep working across the move.
 */
export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  /** The user's generation the session belongs to (a revoke-all moves the user's past it). */
  readonly userGeneration: number;
  /** Of the current refresh token, and its SHA-256. */
  readonly generation: number;
  readonly tokenHash: string;
  /** The token rotated last, for the reuse interval: its hash, when, and its successor sealed under it. */
  readonly previous: { readonly hash: string; readonly rotatedAt: number; readonly sealed: string } | undefined;
  readonly createdAt: number;
  readonly lastRefreshedAt: number;
  readonly expiresAt: number;
  readonly tokenExpiresAt: number;
  readonly clientAddress: string;
  readonly userAgent: string;
  readonly amr: readonly string[];
}

/** What the operators' tools need of a store beyond the flows' ports: moving sessions, and maintenance. */
export interface OperatorStore {
  /** A user's active sessions as stored (for export). */
  exportSessions(userId: string): Promise<SessionRecord[]>;
  /**
   * Whether every instance refuses writes for a maintenance (the move to another store): read by
   * each instance's health check, set by `grpc-auth maintenance`.
   */
  readMaintenance(): Promise<boolean>;
  setMaintenance(on: boolean): Promise<void>;
}

export interface Store extends AccountStore, SessionStore, SessionLiveness, AttemptStore, ServiceAccountStore, RateStore, UserSecretStore, PasskeyStore, ApiKeyStore, OperatorStore {
  /** Ids of the users that came from the users file (for seeding it). */
  fileUserIds(): Promise<string[]>;
  /**
   * Opens connections, if the store has any; rejects with `unavailable` when it cannot reach its
   * server, and with StoreSetupError when what answers can never serve (start-up stops).
   */
  connect(): Promise<void>;
  /** Resolves when the store can serve; rejects with `unavailable` when it cannot. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The store's server answers but can never serve as configured (a Redis Cluster node or a Sentinel
 * named where a plain server belongs): start-up stops with this message instead of waiting.
 */
export class StoreSetupError extends Error {
  override readonly name = 'StoreSetupError';
}

/**
 * The store's server refuses this service as configured, and will until someone changes the
 * configuration or the server: a wrong password or user (PostgreSQL 28P01, 28000; Redis WRONGPASS,
 * NOAUTH), no such database (3D000), no privilege (42501; Redis NOPERM). A short outage is not
 * this. Returns what to tell the operator, or undefined.
 */
export function refusal(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === '28P01' || code === '28000') return `the database refused the user or password (SQLSTATE ${code}): check the credentials in AUTH_DATABASE_URL`;
    if (code === '3D000') return `the database named in AUTH_DATABASE_URL does not exist (SQLSTATE 3D000): create it, or name another`;
    if (code === '42501') return `the database user lacks a privilege the service needs (SQLSTATE 42501): ${e.message}`;
    const redis = /\b(WRONGPASS|NOAUTH|NOPERM)\b/.exec(e.message)?.[1];
    if (redis === 'WRONGPASS' || redis === 'NOAUTH') return `Redis refused the credentials (${redis}): check the password in AUTH_REDIS_URL or AUTH_REDIS_PASSWORD, and AUTH_REDIS_USERNAME`;
    if (redis === 'NOPERM') return `Redis refused a command this service needs (NOPERM): grant the user its commands and keys (docs/redis.md)`;
  }
  return undefined;
}
