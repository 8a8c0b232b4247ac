import { Metadata, status as Status, type StatusObject } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { AuthError, type AuthErrorCode } from '../errors.js';

/**
 * The one table from error codes to gRPC status codes. The README's error table mirrors it and a
 * test checks both ways.
 */
export const statusByCode: Readonly<Record<AuthErrorCode, Status>> = {
  invalid_argument: Status.INVALID_ARGUMENT,
  already_exists: Status.ALREADY_EXISTS,
  not_found: Status.NOT_FOUND,
  registration_closed: Status.FAILED_PRECONDITION,
  account_disabled: Status.FAILED_PRECONDITION,
  failed_precondition: Status.FAILED_PRECONDITION,
  conflict: Status.ABORTED,
  invalid_credentials: Status.UNAUTHENTICATED,
  invalid_refresh_token: Status.UNAUTHENTICATED,
  invalid_client: Status.UNAUTHENTICATED,
  unauthenticated: Status.UNAUTHENTICATED,
  permission_denied: Status.PERMISSION_DENIED,
  throttled: Status.RESOURCE_EXHAUSTED,
  overloaded: Status.RESOURCE_EXHAUSTED,
  unavailable: Status.UNAVAILABLE,
  deadline_exceeded: Status.DEADLINE_EXCEEDED,
  internal: Status.INTERNAL,
};

/**
 * Maps anything thrown to a status a caller may see: an AuthError's code and public message;
 * anything else becomes INTERNAL with a generic message (its detail goes to the log only).
 */
export function toStatus(err: unknown): Pick<StatusObject, 'code' | 'details'> & { metadata?: Metadata } {
  const authError = AuthError.from(err);
  const status = { code: statusByCode[authError.code], details: authError.message };
  if (authError.retryAfterSeconds === undefined) return status;
  const metadata = new Metadata();
  metadata.set('retry-after', String(authError.retryAfterSeconds));
  return { ...status, metadata };
}

/** Name and message of a cause, for logs: never the whole object (it may hold request data) nor a stack. */
export function describeCause(err: unknown): { type: string; message: string } {
  const cause = err instanceof AuthError && err.cause !== undefined ? err.cause : err;
  if (cause instanceof Error) return { type: cause.name, message: cause.message };
  return { type: typeof cause, message: 'non-error thrown' };
}

/** What broke goes to the log; the caller only ever sees the public message. */
export function logFailure(log: Pick<Logger, 'warn' | 'error'>, code: Status, err: unknown): void {
  if (code === Status.INTERNAL) log.error({ cause: describeCause(err) }, 'call failed');
  else if (code === Status.UNAVAILABLE) log.warn({ cause: describeCause(err) }, 'call failed: store unavailable');
}
