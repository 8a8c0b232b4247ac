import type { Metadata } from '@grpc/grpc-js';
import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import pino from 'pino';
import type { Principal } from '../core/introspector.js';

export type { Principal };

/** What a handler knows about its call beyond the request. */
export interface CallContext {
  readonly requestId: string;
  /** A child logger carrying the request id and method. */
  readonly log: Logger;
  /** The client's address without the port ("unknown" when grpc-js does not know it). */
  readonly clientAddress: string;
  /** The caller's user agent: printable ASCII, at most 256 characters ('' when none). */
  readonly userAgent: string;
  /** The TLS client certificate's SHA-256 thumbprint, over mTLS (RFC 8705's x5t#S256). */
  readonly certificateThumbprint: string | undefined;
  /** Set by the bearer interceptor on protected methods. */
  principal: Principal | undefined;
  /** Aborted when the call is cancelled, cut at shutdown, or runs out of time. */
  readonly signal: AbortSignal;
}

/**
 * The context of one call. Its signal is made on first use: most unary handlers never look at
 * it, and an AbortController per call would be paid on the hottest paths.
 */
export class CallState implements CallContext {
  principal: Principal | undefined = undefined;
  /** The call's trace context (its SERVER span active) when tracing is on; handlers run in it. */
  traceContext: Context | undefined = undefined;
  private controller: AbortController | undefined;
  private abortReason: unknown;

  constructor(
    readonly requestId: string,
    readonly log: Logger,
    readonly clientAddress: string,
    private readonly metadata?: Metadata,
    private readonly peer?: () => string | undefined,
  ) {}

  /** Read when a flow asks (IssueServiceToken): most calls never do. */
  get certificateThumbprint(): string | undefined {
    return this.peer?.();
  }

  /** Read when a flow asks (Login): most calls never do. */
  get userAgent(): string {
    return this.metadata ? userAgentOf(this.metadata.get('user-agent')) : '';
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** Aborts the signal (now, or when it is first read). */
  abort(reason: unknown): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }
}

/** A user agent as it may be kept and shown: printable ASCII only, at most 256 characters. */
export function userAgentOf(values: ReadonlyArray<string | Buffer>): string {
  const value = values.length === 1 && typeof values[0] === 'string' ? values[0] : '';
  return value.replace(/[^\x20-\x7e]/g, '').slice(0, 256);
}

/** "127.0.0.1:5000" → "127.0.0.1", "[::1]:5000" → "::1". */
export function addressOf(peer: string): string {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(peer);
  if (bracketed) return bracketed[1]!;
  const colon = peer.lastIndexOf(':');
  return colon > 0 && peer.indexOf(':') === colon ? peer.slice(0, colon) : peer;
}

// grpc-js has no per-call context and AsyncLocalStorage does not survive from interceptor to
// handler, but the handler receives the very Metadata object the interceptors passed on.
const contexts = new WeakMap<Metadata, CallState>();
const silent = pino({ level: 'silent' });

export function attachCallContext(metadata: Metadata, ctx: CallState): void {
  contexts.set(metadata, ctx);
}

/** The context of a call; a silent one when no interceptor attached any (e.g. a bare test server). */
export function callContext(metadata: Metadata): CallState {
  let ctx = contexts.get(metadata);
  if (!ctx) {
    ctx = new CallState('-', silent, 'unknown');
    contexts.set(metadata, ctx);
  }
  return ctx;
}

/** The principal of a protected call. Throws if the method was not protected: a wiring bug. */
export function requirePrincipal(ctx: CallContext): Principal {
  if (!ctx.principal) throw new Error('no principal: the method is not behind the bearer interceptor');
  return ctx.principal;
}
