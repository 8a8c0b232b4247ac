import * as grpc from '@grpc/grpc-js';

/**
 * The one error every client of this package rejects with (`createClient`, the auth client, its
 * sessions): the gRPC status `code`, the server's `details`, and the trailing `metadata` (for
 * example `retry-after` on RESOURCE_EXHAUSTED). `retryAfterSeconds` reads that trailer.
 */
export class AuthClientError extends Error {
  /** Always `'AuthClientError'`. */
  override readonly name = 'AuthClientError';
  constructor(
    /** The gRPC status code (`grpc.status.UNAUTHENTICATED` ...). */
    readonly code: grpc.status,
    /** The server's message: safe to show, never a secret. */
    readonly details: string,
    options?: { cause?: unknown; metadata?: grpc.Metadata },
  ) {
    super(`${grpc.status[code] ?? code}: ${details}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.metadata = options?.metadata ?? new grpc.Metadata();
  }

  /** The call's trailing metadata (`retry-after`, `grpc-status-details-bin` ...). */
  readonly metadata: grpc.Metadata;

  /** Seconds from the `retry-after` trailer, or undefined. */
  get retryAfterSeconds(): number | undefined {
    const value = Number(this.metadata.get('retry-after')[0]);
    return Number.isFinite(value) && value > 0 ? value : undefined;
  }

  /** Any failure of a call as an AuthClientError (a grpc-js ServiceError keeps its code, details and trailers). */
  static from(err: unknown): AuthClientError {
    if (err instanceof AuthClientError) return err;
    const e = err as Partial<grpc.ServiceError>;
    return new AuthClientError(typeof e?.code === 'number' ? e.code : grpc.status.UNKNOWN, typeof e?.details === 'string' ? e.details : String((e as Error)?.message ?? err), {
      cause: err,
      ...(e?.metadata instanceof grpc.Metadata ? { metadata: e.metadata } : {}),
    });
  }
}
