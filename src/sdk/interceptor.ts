import { createPublicKey, type KeyObject } from 'node:crypto';
import type { DescService } from '@bufbuild/protobuf';
import type * as grpc from '@grpc/grpc-js';
import { type AuthService, InactiveReason, SubjectType } from '../../gen/auth/v1/auth_pb.js';
import { systemClock, type Clock } from '../clock.js';
import { AccessTokenVerifier, type InvalidReason } from '../core/access-token.js';
import { principalOf, type Introspection } from '../core/introspector.js';
import type { SigningKey } from '../core/keys.js';
import { AuthError } from '../errors.js';
import { policiesFrom } from '../grpc/access-policy.js';
import { inactiveReasons } from '../grpc/auth-service.js';
import { callContext, requirePrincipal, type CallContext, type Principal } from '../grpc/call-context.js';
import { bearerInterceptor } from '../grpc/bearer-interceptor.js';
import type { Client } from '../grpc/client.js';

/**
 * The interceptor entry point (`grpc-auth-service/interceptor`): the bearer interceptor the
 * SecureService uses, for any grpc-js server. Policies come from the server's own descriptors
 * (the `(auth.v1.access)` method option; no option = any valid token; deny by default).
 */

export type { Principal };

/**
 * The verified caller of a call that passed the interceptor: give it the grpc-js call (plain
 * handlers) or the context the typed adapter passes. Throws for a method without a policy check.
 */
export function getPrincipal(source: { readonly metadata: grpc.Metadata } | CallContext): Principal {
  return requirePrincipal('principal' in source ? source : callContext(source.metadata));
}

/**
 * Verify tokens in this process with the auth service's public keys (GetJwks): no call per
 * request; a token carries the roles it was issued with until it expires.
 */
export interface LocalVerification {
  /** Always `'local'`. */
  readonly mode: 'local';
  /** Returns the JWK Set JSON: usually `() => authClient.auth.getJwks({}).then((r) => r.jwksJson)`. */
  readonly fetchJwks: () => Promise<string>;
  /** The issuer and audience the auth service signs for (its AUTH_ISSUER and AUTH_AUDIENCE). */
  readonly issuer: string;
  /** The audience tokens must name (the auth service's AUTH_AUDIENCE). */
  readonly audience: string;
  /** Leeway on `exp` and `iat`. Default 30 s. */
  readonly clockSkewMs?: number;
  /** An unknown `kid` fetches the keys again, at most this often (ms). Default 30 s. */
  readonly minRefetchIntervalMs?: number;
}

/**
 * Verify tokens through the auth service's Validate: sees logouts, role changes and disabled
 * accounts at once (within the cache's few seconds), at one call per token and cache period.
 */
export interface RemoteVerification {
  /** Always `'remote'`. */
  readonly mode: 'remote';
  /** An AuthService client (createAuthClient(...).auth). */
  readonly auth: Pick<Client<typeof AuthService>, 'validate'>;
  /** How long an answer is reused (ms). Default 5 s: revocations show after at most this. */
  readonly cacheTtlMs?: number;
  /** Most answers kept. Default 10,000. */
  readonly cacheSize?: number;
}

/** What {@link createAuthInterceptor} protects, and how it checks tokens. */
export interface AuthInterceptorOptions {
  /** The services this server implements, as generated descriptors. */
  readonly services: readonly DescService[];
  /** grpc-js definitions whose every method is public (health, reflection). */
  readonly publicServices?: readonly grpc.ServiceDefinition[];
  /** Local (keys of GetJwks) or remote (Validate) verification. */
  readonly verification: LocalVerification | RemoteVerification;
  /** Bound on one token check (ms). Default 5 s. */
  readonly timeoutMs?: number;
  /** The clock tokens' times are checked on: the test kit's ManualClock in tests, so expiry moves with it. Default: the system clock. */
  readonly clock?: Clock;
}

/**
 * A grpc-js server interceptor that enforces the access policy your proto declares
 * (`option (auth.v1.access)`): public methods pass, every other method needs a valid bearer
 * token (and the roles, second factor and sign-in age its policy names); a method of a service
 * without a policy is denied. The verified caller is `getPrincipal(call)` in your handlers.
 *
 * @example
 * ```ts
 * new grpc.Server({ interceptors: [createAuthInterceptor({ services: [OrdersService], verification: { mode: 'remote', auth: authClient.auth } })] });
 * ```
 */
export function createAuthInterceptor(options: AuthInterceptorOptions): grpc.ServerInterceptor {
  const clock = options.clock ?? systemClock;
  const authenticate = options.verification.mode === 'local' ? localVerifier(options.verification, clock) : remoteVerifier(options.verification, clock);
  return bearerInterceptor({ policies: policiesFrom(options.services, options.publicServices), authenticate, timeoutMs: options.timeoutMs ?? 5000, clock });
}

/**
 * Verifies locally with the public keys of GetJwks: fetched on first use, fetched again for an
 * unknown `kid` (rate-limited), and kept when the auth service cannot be reached. Local checks
 * see a revocation only when the token expires; use remote verification where that matters.
 */
function localVerifier(v: LocalVerification, clock: Clock): (token: string) => Promise<Introspection> {
  const keys = new Map<string, SigningKey>();
  let lastFetch = -Infinity;
  let fetching: Promise<void> | undefined;
  const verifier = new AccessTokenVerifier(
    { alg: 'ES256', byKid: (kid) => keys.get(kid) },
    { issuer: v.issuer, audience: v.audience, clockSkewMs: v.clockSkewMs ?? 30_000 },
    clock,
  );
  const refetch = (): Promise<void> => {
    if (clock.now() - lastFetch < (v.minRefetchIntervalMs ?? 30_000)) return fetching ?? Promise.resolve();
    lastFetch = clock.now();
    fetching = v
      .fetchJwks()
      .then((json) => {
        const fresh = parseJwks(json);
        if (fresh.size > 0) {
          keys.clear();
          for (const [kid, key] of fresh) keys.set(kid, key);
        }
      })
      .catch(() => {
        // Keep the keys we have: the auth service being away must not fail verification.
      })
      .finally(() => {
        fetching = undefined;
      });
    return fetching;
  };
  return async (token) => {
    const kid = kidOf(token);
    if (kid !== undefined && !keys.has(kid)) await refetch();
    const result = verifier.verify(token);
    return result.ok ? { ok: true, principal: principalOf(result.claims) } : result;
  };
}

function kidOf(token: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, Math.max(0, token.indexOf('.'))), 'base64url').toString('utf8')) as { kid?: unknown };
    return typeof header.kid === 'string' && header.kid.length <= 128 ? header.kid : undefined;
  } catch {
    return undefined;
  }
}

function parseJwks(json: string): Map<string, SigningKey> {
  const out = new Map<string, SigningKey>();
  const set = JSON.parse(json) as { keys?: Array<Record<string, string>> };
  for (const jwk of set.keys ?? []) {
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.kid !== 'string') continue;
    const verifyKey: KeyObject = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y! }, format: 'jwk' });
    out.set(jwk.kid, { alg: 'ES256', kid: jwk.kid, signKey: verifyKey, verifyKey, publicJwk: undefined });
  }
  return out;
}

const reasonOf = new Map<InactiveReason, InvalidReason>(Object.entries(inactiveReasons).map(([k, v]) => [v, k as InvalidReason]));

/** Verifies through the auth service's Validate, which also sees revocations; answers are cached briefly. */
function remoteVerifier(v: RemoteVerification, clock: Clock): (token: string) => Promise<Introspection> {
  const ttl = v.cacheTtlMs ?? 5000;
  const size = v.cacheSize ?? 10_000;
  const cache = new Map<string, { result: Introspection; until: number }>();
  return async (token) => {
    const now = clock.now();
    const hit = cache.get(token);
    if (hit && now < hit.until) return hit.result;
    let answer;
    try {
      answer = await v.auth.validate({ accessToken: token }, { deadline: 5000 });
    } catch (err) {
      const code = (err as { code?: number }).code;
      // INVALID_ARGUMENT: an empty or oversized token, not worth asking about.
      if (code === 3) return { ok: false, reason: 'malformed' };
      throw new AuthError('unavailable', 'auth service unavailable', { cause: err });
    }
    const result: Introspection = answer.active
      ? {
          ok: true,
          principal: Object.freeze({
            subjectType: answer.subjectType === SubjectType.SERVICE_ACCOUNT ? ('service_account' as const) : ('user' as const),
            userId: answer.userId,
            username: answer.username,
            roles: Object.freeze([...answer.roles]),
            sessionId: answer.sessionId,
            tokenId: answer.tokenId,
            issuedAt: Number(answer.issuedAt?.seconds ?? 0),
            expiresAt: Number(answer.expiresAt?.seconds ?? 0),
            amr: Object.freeze([...answer.amr]),
            authTime: Number(answer.authTime?.seconds ?? answer.issuedAt?.seconds ?? 0),
            withheldRoles: Object.freeze([]),
            ...(answer.clientId ? { clientId: answer.clientId } : {}),
            ...(answer.certificateThumbprint ? { certificateThumbprint: answer.certificateThumbprint } : {}),
          }),
        }
      : { ok: false, reason: reasonOf.get(answer.reason) ?? 'malformed' };
    const until = Math.min(now + ttl, result.ok ? result.principal.expiresAt * 1000 : now + ttl);
    if (cache.size >= size) cache.delete(cache.keys().next().value!);
    cache.set(token, { result, until });
    return result;
  };
}
