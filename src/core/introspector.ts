import type { Clock } from '../clock.js';
import type { AccessClaims, AccessTokenVerifier, InvalidReason } from './access-token.js';
import type { LiveUser } from './records.js';
import { multiFactor } from './amr.js';

/** Who a token names: a person with a session, or a backend's service account. */
export type SubjectType = 'user' | 'service_account';

/** The verified caller behind an access token: what Validate reports and handlers receive. */
export interface Principal {
  /** `'user'` or `'service_account'`. */
  readonly subjectType: SubjectType;
  /** The user's id, or the service account's ("sva_…"). */
  readonly userId: string;
  /** The user's username now (a rename shows at once). */
  readonly username: string;
  /** The user's roles now, not as the token was issued: a role change takes effect at once. */
  readonly roles: readonly string[];
  /** The user's session, or the service account's credential that issued the token. */
  readonly sessionId: string;
  /** The token's `jti`. */
  readonly tokenId: string;
  /** Seconds since the epoch. */
  readonly issuedAt: number;
  /** When the token expires, seconds since the epoch. */
  readonly expiresAt: number;
  /** A service account's client id. */
  readonly clientId?: string | undefined;
  /** The TLS client certificate the token is bound to (RFC 8705), when it is. */
  readonly certificateThumbprint?: string | undefined;
  /** How the user authenticated (RFC 8176): ["pwd"], ["pwd", "otp"] or ["pop", "mfa"] (a passkey); empty for a service account. */
  readonly amr: readonly string[];
  /** When the subject authenticated, seconds since the epoch (a service account: when the token was issued). */
  readonly authTime: number;
  /** Roles the user holds but this token may not use: granted only with a second factor (AUTH_MFA_REQUIRED_ROLES). */
  readonly withheldRoles: readonly string[];
}

/** Whether a principal signed in with a second factor (RFC 8176 "otp", or "mfa": a user-verified passkey). */
export function hasSecondFactor(principal: Pick<Principal, 'amr'>): boolean {
  return multiFactor(principal.amr);
}

/**
 * The roles a token of a session may use: all of the user's, but those `mfaRoles` names unless
 * the session began with a second factor. One rule for issuing tokens and for reading them.
 */
export function grantedRoles(roles: readonly string[], amr: readonly string[], mfaRoles: readonly string[]): { granted: readonly string[]; withheld: readonly string[] } {
  if (mfaRoles.length === 0 || multiFactor(amr)) return { granted: roles, withheld: [] };
  return { granted: roles.filter((r) => !mfaRoles.includes(r)), withheld: roles.filter((r) => mfaRoles.includes(r)) };
}

/**
 * RFC 8705 section 3: a certificate-bound token is good only with its own certificate. True for
 * a token bound to nothing, and for a bound one when `presented` (the call's certificate
 * thumbprint) is that certificate.
 */
export function certificateMatches(principal: Principal, presented: string | undefined): boolean {
  return principal.certificateThumbprint === undefined || principal.certificateThumbprint === presented;
}

export type Introspection = { readonly ok: true; readonly principal: Principal } | { readonly ok: false; readonly reason: InvalidReason };

/** The introspector's storage port: the live subject behind a token, or undefined when it is not active. */
export interface SessionLiveness {
  /**
   * The user of an active session: the session exists, is not revoked or over, was not ended by a
   * revoke-all of its user, and its user exists and is enabled. One read, on every check.
   */
  liveSession(userId: string, sessionId: string): Promise<LiveUser | undefined>;
  /** The service account of an active credential: the account exists, is enabled, and still has it. */
  liveCredential(serviceAccountId: string, credentialId: string): Promise<LiveUser | undefined>;
  /** The owner of a live API key (api-keys.ts): the key is there and has not expired, its owner is enabled. */
  liveApiKey(ownerId: string, apiKeyId: string): Promise<LiveUser | undefined>;
}

export interface IntrospectorOptions {
  /** Verified tokens remembered (oldest out first when full). 0 turns the cache off. */
  readonly cacheSize: number;
  /** Clock skew allowed past `exp` (the verifier's). */
  readonly clockSkewMs: number;
  /** Roles granted only to sessions with a second factor (AUTH_MFA_REQUIRED_ROLES). */
  readonly mfaRoles?: readonly string[];
}

interface Verified {
  readonly claims: AccessClaims;
  /** The principal last built for this token, and the user revision it reflects. */
  principal: Principal | undefined;
  revision: number;
}

/**
 * Token introspection: signature and claims (stateless), then the session and its user as they
 * are now (one store read). Validate and the bearer interceptor both call this, so they always
 * agree, and roles, disabling and revocation take effect on the very next call.
 *
 * Services check the same token on every request, so a verified token is remembered until it
 * expires: a repeat skips the signature check, never the store read, and while the user's
 * revision is unchanged it gets the very same `Principal` object back, which lets the gRPC layer
 * answer it from its own cache (see `grpc/answer-cache.ts`). Only successful verifications are
 * cached (a failure is cheap to repeat and must not crowd out good entries); the cache is
 * bounded and drops its oldest first.
 */
export class Introspector {
  private readonly verified = new Map<string, Verified>();

  constructor(
    private readonly verifier: AccessTokenVerifier,
    private readonly sessions: SessionLiveness,
    private readonly clock: Clock,
    private readonly options: IntrospectorOptions = { cacheSize: 0, clockSkewMs: 0 },
  ) {}

  async introspect(token: string): Promise<Introspection> {
    const now = this.clock.now();
    let entry = this.verified.get(token);
    if (entry !== undefined && now >= entry.claims.exp * 1000 + this.options.clockSkewMs) {
      this.verified.delete(token);
      entry = undefined;
    }
    if (entry === undefined) {
      const result = this.verifier.verify(token);
      if (!result.ok) return result;
      entry = { claims: result.claims, principal: undefined, revision: -1 };
      this.remember(token, entry);
    }
    const { sub, sid } = entry.claims;
    const live = entry.claims.api_key_id !== undefined
      ? await this.sessions.liveApiKey(sub, sid)
      : sub.startsWith('sva_')
        ? await this.sessions.liveCredential(sub, sid)
        : await this.sessions.liveSession(sub, sid);
    if (live === undefined) return { ok: false, reason: 'revoked' };
    if (entry.principal === undefined || entry.revision !== live.revision) {
      entry.principal = principalOf(entry.claims, live, this.options.mfaRoles);
      entry.revision = live.revision;
    }
    return { ok: true, principal: entry.principal };
  }

  private remember(token: string, entry: Verified): void {
    if (this.options.cacheSize === 0) return;
    if (this.verified.size >= this.options.cacheSize) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, entry);
  }

  /** Drops every remembered verification (the keys changed): the next check of each token verifies it again. */
  forgetVerified(): void {
    this.verified.clear();
  }

  /** Entries held, for tests and metrics. */
  get cached(): number {
    return this.verified.size;
  }
}

/** The principal of verified claims; with `live`, the user's username and roles as they are now. */
export function principalOf(claims: AccessClaims, live?: Pick<LiveUser, 'username' | 'roles'>, mfaRoles: readonly string[] = []): Principal {
  const serviceAccount = claims.sub.startsWith('sva_');
  // Tokens from before amr was issued, and service accounts' tokens, name no second factor.
  const amr = serviceAccount ? [] : (claims.amr ?? ['pwd']);
  // An API key's token carries the key's roles the owner still holds: never more than either.
  const held = claims.api_key_id !== undefined && live ? live.roles.filter((r) => claims.roles.includes(r)) : (live?.roles ?? claims.roles);
  const { granted, withheld } = serviceAccount ? { granted: held, withheld: [] } : grantedRoles(held, amr, mfaRoles);
  return Object.freeze({
    subjectType: serviceAccount ? ('service_account' as const) : ('user' as const),
    userId: claims.sub,
    username: live?.username ?? claims.username,
    roles: Object.freeze([...granted]),
    amr: Object.freeze([...amr]),
    authTime: claims.auth_time ?? claims.iat,
    withheldRoles: Object.freeze([...withheld]),
    sessionId: claims.sid,
    tokenId: claims.jti,
    issuedAt: claims.iat,
    expiresAt: claims.exp,
    clientId: claims.client_id,
    certificateThumbprint: claims.cnf?.['x5t#S256'],
  });
}
