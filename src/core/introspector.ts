import type { Clock } from '../clock.js';
import type { SessionStore } from '../store/store.js';
import type { AccessTokenVerifier, VerifyResult } from './access-token.js';

/**
 * Token introspection: signature and claims (stateless), then the session's revocation state
 * (one store read). Validate and the bearer interceptor both call this, so they always agree.
 */
export class Introspector {
  constructor(
    private readonly verifier: AccessTokenVerifier,
    private readonly sessions: Pick<SessionStore, 'isSessionActive'>,
    private readonly clock: Clock,
  ) {}

  async introspect(token: string): Promise<VerifyResult> {
    const result = this.verifier.verify(token);
    if (!result.ok) return result;
    if (!(await this.sessions.isSessionActive(result.claims.sid, this.clock.now()))) return { ok: false, reason: 'revoked' };
    return result;
  }
}
