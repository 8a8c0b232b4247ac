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
  'insufficient_authentication',
  'permission_denied',
  'throttled',
  'overloaded',
  'unavailable',
  'deadline_exceeded',
  'internal',
] as const;

export type AuthErrorCode = (typeof authErrorCodes)[number];

/** The ErrorInfo reasons of domain "auth.v1" (documented in docs/errors.md). */
export const errorReasons = ['MFA_REQUIRED', 'REAUTHENTICATION_REQUIRED', 'MFA_CODE_INVALID', 'MFA_CODE_REQUIRED'] as const;
export type ErrorReason = (typeof errorReasons)[number];
/** The ErrorInfo domain of every reason this service sends. */
export const ERROR_DOMAIN = 'auth.v1';

export class AuthError extends Error {
  override readonly name = 'AuthError';

  /** For `throttled` and `overloaded`: when the caller may try again (sent as the `retry-after` trailer). */
  readonly retryAfterSeconds: number | undefined;

  /**
   * A machine-readable reason (sent as a google.rpc.ErrorInfo detail of domain "auth.v1"), so a
   * client can act on it: `insufficient_authentication` says MFA_REQUIRED or REAUTHENTICATION_REQUIRED;
   * a wrong second-factor code says MFA_CODE_INVALID (ask for another); a change to the factor
   * without a code of it says MFA_CODE_REQUIRED (ask for one).
   */
  readonly reason: ErrorReason | undefined;
  /** Facts for the reason (ErrorInfo metadata), e.g. max_age_seconds. Never a secret. */
  readonly reasonMetadata: Readonly<Record<string, string>> | undefined;

  constructor(
    readonly code: AuthErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number; reason?: ErrorReason; reasonMetadata?: Record<string, string> },
  ) {
    super(message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.reason = options?.reason;
    this.reasonMetadata = options?.reasonMetadata;
  }

  /** Turns anything thrown into an AuthError; unknown errors become `internal` with a generic message. */
  static from(err: unknown): AuthError {
    if (err instanceof AuthError) return err;
    return new AuthError('internal', 'internal error', { cause: err });
  }
}
