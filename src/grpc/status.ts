import { Metadata, status as Status, type StatusObject } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { create, toBinary } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import { ErrorInfoSchema } from '../../gen/google/rpc/error_details_pb.js';
import { StatusSchema } from '../../gen/google/rpc/status_pb.js';
import { AuthError, ERROR_DOMAIN, type AuthErrorCode } from '../errors.js';

/**
 * The one table from error codes to gRPC status codes. docs/errors.md's table mirrors it and a
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
  // RFC 9470's insufficient_user_authentication is a 401 as well: the caller must sign in again, better.
  insufficient_authentication: Status.UNAUTHENTICATED,
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
  if (authError.retryAfterSeconds === undefined && authError.reason === undefined) return status;
  const metadata = new Metadata();
  if (authError.retryAfterSeconds !== undefined) metadata.set('retry-after', String(authError.retryAfterSeconds));
  if (authError.reason !== undefined) metadata.set('grpc-status-details-bin', Buffer.from(statusDetails(status.code, authError)));
  return { ...status, metadata };
}

/**
 * The gRPC richer error model (AIP-193): a google.rpc.Status whose details hold an ErrorInfo
 * with the reason, in the `grpc-status-details-bin` trailer, as grpc-java, grpc-go and grpcurl read it.
 */
function statusDetails(code: Status, err: AuthError): Uint8Array {
  const info = create(ErrorInfoSchema, { reason: err.reason!, domain: ERROR_DOMAIN, metadata: { ...err.reasonMetadata } });
  return toBinary(StatusSchema, create(StatusSchema, { code, message: err.message, details: [anyPack(ErrorInfoSchema, info)] }));
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
  else if (code === Status.UNAVAILABLE) log.warn({ cause: describeCause(err) }, 'call failed: unavailable');
}
