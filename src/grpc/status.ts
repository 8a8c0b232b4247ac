import { status as Status, type StatusObject } from '@grpc/grpc-js';
import { AuthError, type AuthErrorCode } from '../errors.js';

/**
 * The one table from error codes to gRPC status codes. The README's error table mirrors it and a
 * test checks both ways.
 */
export const statusByCode: Readonly<Record<AuthErrorCode, Status>> = {
  invalid_argument: Status.INVALID_ARGUMENT,
  already_exists: Status.ALREADY_EXISTS,
  registration_closed: Status.FAILED_PRECONDITION,
  invalid_credentials: Status.UNAUTHENTICATED,
  invalid_refresh_token: Status.UNAUTHENTICATED,
  unauthenticated: Status.UNAUTHENTICATED,
  permission_denied: Status.PERMISSION_DENIED,
  overloaded: Status.RESOURCE_EXHAUSTED,
  unavailable: Status.UNAVAILABLE,
  deadline_exceeded: Status.DEADLINE_EXCEEDED,
  internal: Status.INTERNAL,
};

/**
 * Maps anything thrown to a status a caller may see: an AuthError's code and public message;
 * anything else becomes INTERNAL with a generic message (its detail goes to the log only).
 */
export function toStatus(err: unknown): Pick<StatusObject, 'code' | 'details'> {
  const authError = AuthError.from(err);
  return { code: statusByCode[authError.code], details: authError.message };
}
