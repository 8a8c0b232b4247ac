import type { Clock } from '../clock.js';
import type { SessionStore } from '../store/store.js';
import type { AccessClaims, AccessTokenVerifier, VerifyResult } from './access-token.js';

export interface IntrospectorOptions {
  /** Verified tokens remembered (most recent first out when full). 0 turns the cache off. */
  readonly cacheSize: number;
  /** Seconds of clock skew allowed past `exp` (the verifier's). */
  readonly clockSkew: number;
}

/**
 * Token introspection: signature and claims (stateless), then the session's revocation state
 * (one store read). Validate and the bearer interceptor both call this, so they always agree.
 *
 * Services check the same token on every request, so a verified token's claims are remembered
 * until it expires: a repeat skips the signature check, never the revocation check. Only
 * successful verifications are cached (a failure is cheap to repeat and must not crowd out good
 * entries); the cache is bounded and drops its oldest entries first.
 */
export class Introspector {
  private readonly verified = new Map<string, AccessClaims>();

  constructor(
    private readonly verifier: AccessTokenVerifier,
    private readonly sessions: Pick<SessionStore, 'isSessionActive'>,
    private readonly clock: Clock,
    private readonly options: IntrospectorOptions = { cacheSize: 0, clockSkew: 0 },
  ) {}

  async introspect(token: string): Promise<VerifyResult> {
    const now = this.clock.now();
    let claims = this.verified.get(token);
    if (claims !== undefined && now >= (claims.exp + this.options.clockSkew) * 1000) {
      this.verified.delete(token);
      claims = undefined;
    }
    if (claims === undefined) {
      const result = this.verifier.verify(token);
      if (!result.ok) return result;
      claims = result.claims;
      this.remember(token, claims);
    }
    if (!(await this.sessions.isSessionActive(claims.sid, now))) return { ok: false, reason: 'revoked' };
    return { ok: true, claims };
  }

  private remember(token: string, claims: AccessClaims): void {
    if (this.options.cacheSize === 0) return;
    if (this.verified.size >= this.options.cacheSize) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, claims);
  }

  /** Entries held, for tests and metrics. */
  get cached(): number {
    return this.verified.size;
  }
}
