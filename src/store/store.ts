import type { AccountStore } from '../core/accounts.js';
import type { SessionLiveness } from '../core/introspector.js';
import type { AttemptStore } from '../core/login-throttle.js';
import type { ServiceAccountStore } from '../core/service-accounts.js';
import type { SessionStore } from '../core/session-flows.js';
import type { RateStore } from '../core/register.js';
import type { UserSecretStore } from '../core/user-secrets.js';

export type { UserRecord, NewUser, SessionInfo, LiveUser } from '../core/records.js';
export type { NewSession, RotateRequest, RotateResult, SessionStore, CreateSessionResult } from '../core/session-flows.js';
export type { UserStore } from '../core/register.js';
export type { AccountStore, UserChange, UpdateResult, UserQuery } from '../core/accounts.js';
export type { AttemptGrant, AttemptOutcome, AttemptStore, BackoffPolicy } from '../core/login-throttle.js';
export type { SessionLiveness } from '../core/introspector.js';
export type { UserSecretStore, UserSecretsRecord } from '../core/user-secrets.js';
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
export interface Store extends AccountStore, SessionStore, SessionLiveness, AttemptStore, ServiceAccountStore, RateStore, UserSecretStore {
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
