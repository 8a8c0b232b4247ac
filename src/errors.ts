/**
 * The one error type of the service. Core code throws `AuthError` with a code from a closed set;
 * the gRPC layer maps each code to a status in exactly one table (`src/grpc/status.ts`).
 *
 * `message` is public: it reaches callers and must never hold a secret, a token or a stack.
 * `cause` is for logs only (and is logged through an allow-listed serializer).
 */
export const authErrorCodes = [
  'invalid_argument',
  'already_exists',
  'not_found',
  'registration_closed',
  'account_disabled',
  'failed_precondition',
  'conflict',
  'invalid_credentials',
  'invalid_refresh_token',
  'invalid_client',
  'unauthenticated',
  'permission_denied',
  'throttled',
  'overloaded',
  'unavailable',
  'deadline_exceeded',
  'internal',
] as const;

export type AuthErrorCode = (typeof authErrorCodes)[number];

export class AuthError extends Error {
  override readonly name = 'AuthError';

  /** For `throttled` and `overloaded`: when the caller may try again (sent as the `retry-after` trailer). */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: AuthErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  /** Turns anything thrown into an AuthError; unknown errors become `internal` with a generic message. */
  static from(err: unknown): AuthError {
    if (err instanceof AuthError) return err;
    return new AuthError('internal', 'internal error', { cause: err });
  }
}
