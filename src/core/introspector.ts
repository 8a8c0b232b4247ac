import type { Clock } from '../clock.js';
import type { AccessClaims, AccessTokenVerifier, InvalidReason } from './access-token.js';

/** The verified caller behind an access token: what Validate reports and handlers receive. */
export interface Principal {
  readonly userId: string;
  readonly username: string;
  readonly roles: readonly string[];
  readonly sessionId: string;
  readonly tokenId: string;
  /** Seconds since the epoch. */
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export type Introspection = { readonly ok: true; readonly principal: Principal } | { readonly ok: false; readonly reason: InvalidReason };

/** The introspector's storage port: is the session behind a token still live? */
export interface SessionLiveness {
  /** True when the session exists, is not revoked and has not reached its absolute end. */
  isSessionActive(sessionId: string, now: number): Promise<boolean>;
}

export interface IntrospectorOptions {
  /** Verified tokens remembered (oldest out first when full). 0 turns the cache off. */
  readonly cacheSize: number;
  /** Clock skew allowed past `exp` (the verifier's). */
  readonly clockSkewMs: number;
}

/**
 * Token introspection: signature and claims (stateless), then the session's revocation state
 * (one store read). Validate and the bearer interceptor both call this, so they always agree.
 *
 * Services check the same token on every request, so a verified token is remembered until it
 * expires: a repeat skips the signature check, never the revocation check, and gets the very
 * same `Principal` object back, which lets the gRPC layer answer it from its own cache (see
 * `grpc/answer-cache.ts`). Only successful verifications are cached (a failure is cheap to
 * repeat and must not crowd out good entries); the cache is bounded and drops its oldest first.
 */
export class Introspector {
  private readonly verified = new Map<string, Principal>();

  constructor(
    private readonly verifier: AccessTokenVerifier,
    private readonly sessions: SessionLiveness,
    private readonly clock: Clock,
    private readonly options: IntrospectorOptions = { cacheSize: 0, clockSkewMs: 0 },
  ) {}

  async introspect(token: string): Promise<Introspection> {
    const now = this.clock.now();
    let principal = this.verified.get(token);
    if (principal !== undefined && now >= principal.expiresAt * 1000 + this.options.clockSkewMs) {
      this.verified.delete(token);
      principal = undefined;
    }
    if (principal === undefined) {
      const result = this.verifier.verify(token);
      if (!result.ok) return result;
      principal = principalOf(result.claims);
      this.remember(token, principal);
    }
    if (!(await this.sessions.isSessionActive(principal.sessionId, now))) return { ok: false, reason: 'revoked' };
    return { ok: true, principal };
  }

  private remember(token: string, principal: Principal): void {
    if (this.options.cacheSize === 0) return;
    if (this.verified.size >= this.options.cacheSize) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, principal);
  }

  /** Entries held, for tests and metrics. */
  get cached(): number {
    return this.verified.size;
  }
}

export function principalOf(claims: AccessClaims): Principal {
  return Object.freeze({
    userId: claims.sub,
    username: claims.username,
    roles: Object.freeze([...claims.roles]),
    sessionId: claims.sid,
    tokenId: claims.jti,
    issuedAt: claims.iat,
    expiresAt: claims.exp,
  });
}
