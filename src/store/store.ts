import type { SessionLiveness } from '../core/introspector.js';
import type { AttemptStore } from '../core/login-throttle.js';
import type { UserStore } from '../core/register.js';
import type { SessionStore } from '../core/session-flows.js';

export type { UserRecord, SessionRecord } from '../core/records.js';
export type { NewSession, RefreshTokenRef, RotateRequest, RotateResult, SessionStore } from '../core/session-flows.js';
export type { UserStore } from '../core/register.js';
export type { AttemptGrant, AttemptOutcome, AttemptStore, BackoffPolicy } from '../core/login-throttle.js';
export type { SessionLiveness } from '../core/introspector.js';

/**
 * A storage backend: every port the core declares (users, sessions, session liveness, login
 * attempts), plus its lifecycle. Each port lives next to the flow that uses it; one conformance
 * suite (test/store/store-conformance.ts) runs against every implementation.
 *
 * Times are milliseconds since the epoch and are always passed in: stores never read a clock.
 * Stores signal an outage by rejecting with `AuthError('unavailable', ...)`.
 */
export interface Store extends UserStore, SessionStore, SessionLiveness, AttemptStore {
  /** Opens connections, if the store has any; rejects with `unavailable` when it cannot reach its server. */
  connect(): Promise<void>;
  /** Resolves when the store can serve; rejects with `unavailable` when it cannot. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
