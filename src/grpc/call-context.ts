import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import pino from 'pino';
import type { AccessClaims } from '../core/access-token.js';

/** The verified caller, as the bearer interceptor hands it to handlers. */
export interface Principal {
  readonly userId: string;
  readonly username: string;
  readonly roles: readonly string[];
  readonly sessionId: string;
  readonly tokenId: string;
  /** Seconds since the epoch. */
  readonly expiresAt: number;
}

/** What a handler knows about its call beyond the request. */
export interface CallContext {
  readonly requestId: string;
  /** A child logger carrying the request id and method. */
  readonly log: Logger;
  /** The client's address without the port ("unknown" when grpc-js does not know it). */
  readonly clientAddress: string;
  /** Set by the bearer interceptor on protected methods. */
  principal: Principal | undefined;
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
const contexts = new WeakMap<Metadata, CallContext>();
const fallbackLog = pino({ level: 'silent' });

export function attachCallContext(metadata: Metadata, ctx: CallContext): void {
  contexts.set(metadata, ctx);
}

/** The context of a call; a silent one when no interceptor attached any (e.g. a bare test server). */
export function callContext(metadata: Metadata): CallContext {
  let ctx = contexts.get(metadata);
  if (!ctx) {
    ctx = { requestId: '-', log: fallbackLog, clientAddress: 'unknown', principal: undefined };
    contexts.set(metadata, ctx);
  }
  return ctx;
}

/** The principal of a protected call. Throws if the method was not protected: a wiring bug. */
export function requirePrincipal(ctx: CallContext): Principal {
  if (!ctx.principal) throw new Error('no principal: the method is not behind the bearer interceptor');
  return ctx.principal;
}

// One principal per verified claims object: the introspector returns the same claims for a
// token it has seen, so a repeated caller costs no new principal (nor, in turn, a new WhoAmI answer).
const principals = new WeakMap<AccessClaims, Principal>();

export function principalOf(claims: AccessClaims): Principal {
  let principal = principals.get(claims);
  if (principal === undefined) {
    principal = Object.freeze({
      userId: claims.sub,
      username: claims.username,
      roles: claims.roles,
      sessionId: claims.sid,
      tokenId: claims.jti,
      expiresAt: claims.exp,
    });
    principals.set(claims, principal);
  }
  return principal;
}
