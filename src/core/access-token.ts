import jwt from 'jsonwebtoken';
import type { Clock } from '../clock.js';
import type { Random } from '../random.js';
import { hasDuplicateTopLevelKeys } from './json-keys.js';
import type { KeySet } from './keys.js';

/** The claims of a verified access token (RFC 9068 section 2.2 plus `sid`, `username`, `roles`). */
export interface AccessClaims {
  readonly sub: string;
  readonly username: string;
  readonly roles: readonly string[];
  readonly sid: string;
  readonly jti: string;
  /** Seconds since the epoch. */
  readonly iat: number;
  readonly exp: number;
  /** A service account's client id (RFC 9068 section 2.2). */
  readonly client_id?: string | undefined;
  /** The certificate a token is bound to (RFC 8705 section 3.1): base64url SHA-256 of its DER. */
  readonly cnf?: { readonly 'x5t#S256': string } | undefined;
  /** How the user authenticated (RFC 8176): ["pwd"] or ["pwd", "otp"]. Absent for a service account. */
  readonly amr?: readonly string[] | undefined;
  /** When the user authenticated (OIDC Core section 2), seconds: the session's login. */
  readonly auth_time?: number | undefined;
  /** The API key a token was exchanged for (its `sid` is the key's id too). */
  readonly api_key_id?: string | undefined;
}

/** Why a token did not verify. Each maps to one `InactiveReason` of the contract. */
export type InvalidReason =
  | 'malformed'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'revoked'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'wrong_algorithm'
  | 'wrong_token_type'
  | 'certificate_mismatch';

export type VerifyResult = { readonly ok: true; readonly claims: AccessClaims } | { readonly ok: false; readonly reason: InvalidReason };

export interface AccessTokenSubject {
  readonly userId: string;
  readonly username: string;
  readonly roles: readonly string[];
  /** The session (a user) or the credential that authenticated (a service account). */
  readonly sessionId: string;
  readonly clientId?: string | undefined;
  readonly certificateThumbprint?: string | undefined;
  /** A user's authentication methods (RFC 8176) and when they authenticated (ms): kept by Refresh. */
  readonly amr?: readonly string[] | undefined;
  readonly authTime?: number | undefined;
  /** The API key the token is exchanged for. */
  readonly apiKeyId?: string | undefined;
}

export interface IssuedAccessToken {
  readonly token: string;
  /** Seconds from now until `exp`. */
  readonly expiresIn: number;
  readonly claims: AccessClaims;
}

export interface AccessTokenOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly accessTtlMs: number;
  /** Clock difference tolerated on `exp`, `nbf` and `iat`. */
  readonly clockSkewMs: number;
}

/**
 * Tokens longer than this are refused before any decoding or crypto. Ours are well under 1 KiB;
 * the cap leaves room for long usernames and many roles.
 */
export const MAX_ACCESS_TOKEN_LENGTH = 4096;

const TOKEN_TYPE = 'at+jwt';
const BASE64URL_JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// Headers that would let a token choose its own key or demand unknown processing (RFC 8725 section 3.10).
const FORBIDDEN_HEADERS = ['crit', 'jku', 'x5u', 'jwk', 'x5c'];

/** Signs access tokens with the key set's signing key. */
export class AccessTokenIssuer {
  constructor(
    private readonly keys: KeySet,
    private readonly options: Pick<AccessTokenOptions, 'issuer' | 'audience' | 'accessTtlMs'>,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  /** Issues a token for the subject; `notAfter` (ms) caps its expiry, e.g. at the session's end. */
  issue(subject: AccessTokenSubject, notAfter = Infinity): IssuedAccessToken {
    const now = this.clock.now();
    const iat = Math.floor(now / 1000);
    const exp = Math.max(iat + 1, Math.min(iat + Math.floor(this.options.accessTtlMs / 1000), Math.floor(notAfter / 1000)));
    const claims: AccessClaims = {
      sub: subject.userId,
      username: subject.username,
      roles: [...subject.roles],
      sid: subject.sessionId,
      jti: this.random.bytes(16).toString('base64url'),
      iat,
      exp,
      ...(subject.clientId !== undefined ? { client_id: subject.clientId } : {}),
      ...(subject.certificateThumbprint !== undefined ? { cnf: { 'x5t#S256': subject.certificateThumbprint } } : {}),
      ...(subject.amr !== undefined ? { amr: [...subject.amr] } : {}),
      ...(subject.apiKeyId !== undefined ? { api_key_id: subject.apiKeyId } : {}),
      // auth_time is the store's clock, iat this instance's: an instance behind the store would
      // otherwise issue a token that says it was signed in after it was issued (and that every
      // verifier refuses). Never later than iat (test/instances/clock-skew.test.ts).
      ...(subject.authTime !== undefined ? { auth_time: Math.min(Math.floor(subject.authTime / 1000), iat) } : {}),
    };
    const signing = this.keys.signing;
    const signed = jwt.sign(
      { iss: this.options.issuer, aud: this.options.audience, ...claims },
      signing.signKey,
      // `iat` comes from the injected clock: jsonwebtoken keeps a payload's own `iat` (and would
      // delete it under `noTimestamp`).
      { algorithm: signing.alg, keyid: signing.kid, header: { alg: signing.alg, typ: TOKEN_TYPE } },
    );
    const token = signing.alg === 'ES256' ? lowS(signed) : signed;
    return { token, expiresIn: exp - iat, claims };
  }
}

/**
 * Verifies access tokens: the one verifier behind Validate and the bearer interceptor. It never
 * throws: every failure, including errors thrown inside libraries, becomes a reason.
 * Revocation is not its business (see `Introspector`).
 */
export class AccessTokenVerifier {
  constructor(
    /** Only `alg` and `byKid` are used: a set of public keys (from GetJwks) is enough. */
    private readonly keys: Pick<KeySet, 'alg' | 'byKid'>,
    private readonly options: Pick<AccessTokenOptions, 'issuer' | 'audience' | 'clockSkewMs'>,
    private readonly clock: Clock,
  ) {}

  verify(token: string): VerifyResult {
    try {
      return this.verifyOrThrow(token);
    } catch {
      // Anything a library throws on hostile input (SyntaxError, TypeError, RangeError ...).
      return { ok: false, reason: 'malformed' };
    }
  }

  private verifyOrThrow(token: string): VerifyResult {
    if (typeof token !== 'string' || token.length > MAX_ACCESS_TOKEN_LENGTH || !BASE64URL_JWT.test(token)) {
      return invalid('malformed');
    }
    const [headerPart, payloadPart, signaturePart] = token.split('.') as [string, string, string];
    // base64url leaves spare bits in the last character: "…Bw" and "…Bx" decode to the same
    // signature. Only the canonical spelling is accepted, so no two strings are one valid token.
    const signature = Buffer.from(signaturePart, 'base64url');
    if (signature.toString('base64url') !== signaturePart) return invalid('malformed');
    const headerJson = Buffer.from(headerPart, 'base64url').toString('utf8');
    const payloadJson = Buffer.from(payloadPart, 'base64url').toString('utf8');
    const header: unknown = JSON.parse(headerJson);
    if (!isPlainObject(header)) return invalid('malformed');
    // jsonwebtoken verifies a string or number payload and then reports a misleading claim error.
    const payload: unknown = JSON.parse(payloadJson);
    if (!isPlainObject(payload)) return invalid('malformed');
    if (hasDuplicateTopLevelKeys(headerJson, header) || hasDuplicateTopLevelKeys(payloadJson, payload)) return invalid('malformed');
    if (FORBIDDEN_HEADERS.some((name) => name in header)) return invalid('malformed');
    // The algorithm is pinned to the key set's; "none" and algorithm confusion end here.
    if (header.alg !== this.keys.alg) return invalid('wrong_algorithm');
    // RFC 9068 section 4: "at+jwt", optionally with the "application/" prefix (RFC 7515 section 4.1.9).
    if (typeof header.typ !== 'string' || header.typ.toLowerCase().replace(/^application\//, '') !== TOKEN_TYPE) {
      return invalid('wrong_token_type');
    }
    const key = typeof header.kid === 'string' ? this.keys.byKid(header.kid) : undefined;
    if (!key) return invalid('bad_signature');

    const nowSeconds = Math.floor(this.clock.now() / 1000);
    let verified: unknown;
    try {
      verified = jwt.verify(token, key.verifyKey, {
        algorithms: [this.keys.alg],
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTimestamp: nowSeconds,
        clockTolerance: Math.floor(this.options.clockSkewMs / 1000),
      });
    } catch (err) {
      return invalid(reasonOf(err));
    }
    // ECDSA signatures come in pairs: (r, s) and (r, n − s) both verify. Only the low-S one is
    // ever issued (see lowS) or accepted, so no two strings are one valid token.
    if (header.alg === 'ES256' && (signature.length !== 64 || isHighS(signature))) return invalid('malformed');
    return checkClaims(verified, nowSeconds, Math.floor(this.options.clockSkewMs / 1000));
  }
}

function invalid(reason: InvalidReason): VerifyResult {
  return { ok: false, reason };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function reasonOf(err: unknown): InvalidReason {
  if (err instanceof jwt.TokenExpiredError) return 'expired';
  if (err instanceof jwt.NotBeforeError) return 'not_yet_valid';
  if (err instanceof jwt.JsonWebTokenError) {
    if (err.message === 'invalid signature') return 'bad_signature';
    if (err.message.startsWith('jwt issuer invalid')) return 'wrong_issuer';
    if (err.message.startsWith('jwt audience invalid')) return 'wrong_audience';
    if (err.message === 'invalid algorithm') return 'wrong_algorithm';
  }
  return 'malformed';
}

const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** jsonwebtoken accepts tokens without `exp`, with a future `iat`, with a string payload: refuse them. */
function checkClaims(payload: unknown, nowSeconds: number, skew: number): VerifyResult {
  if (!isPlainObject(payload)) return invalid('malformed');
  const { sub, sid, jti, iat, exp, username, roles, client_id: clientId, cnf, amr, auth_time: authTime, api_key_id: apiKeyId } = payload;
  if (!isNonEmptyString(sub) || !isNonEmptyString(sid) || !isNonEmptyString(jti) || typeof username !== 'string') {
    return invalid('malformed');
  }
  if (!isInteger(iat) || !isInteger(exp) || exp <= iat) return invalid('malformed');
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string')) return invalid('malformed');
  if (clientId !== undefined && !isNonEmptyString(clientId)) return invalid('malformed');
  if (apiKeyId !== undefined && (!isNonEmptyString(apiKeyId) || apiKeyId !== sid)) return invalid('malformed');
  if (amr !== undefined && (!Array.isArray(amr) || amr.length > 8 || !amr.every(isNonEmptyString))) return invalid('malformed');
  if (authTime !== undefined && (!isInteger(authTime) || authTime > iat)) return invalid('malformed');
  let thumbprint: string | undefined;
  if (cnf !== undefined) {
    if (!isPlainObject(cnf) || typeof cnf['x5t#S256'] !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(cnf['x5t#S256'])) return invalid('malformed');
    thumbprint = cnf['x5t#S256'];
  }
  if (iat > nowSeconds + skew) return invalid('not_yet_valid');
  return {
    ok: true,
    claims: {
      sub,
      sid,
      jti,
      iat,
      exp,
      username,
      roles: roles as string[],
      ...(clientId !== undefined ? { client_id: clientId } : {}),
      ...(thumbprint !== undefined ? { cnf: { 'x5t#S256': thumbprint } } : {}),
      ...(amr !== undefined ? { amr: amr as string[] } : {}),
      ...(authTime !== undefined ? { auth_time: authTime } : {}),
      ...(apiKeyId !== undefined ? { api_key_id: apiKeyId } : {}),
    },
  };
}

/** The order of P-256 (FIPS 186-4 D.1.2.3), and half of it. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_HALF_N = P256_N >> 1n;

/** n/2 as 32 big-endian bytes: `s` is high exactly when its 32 bytes compare above these. */
const P256_HALF_N_BYTES = Buffer.from(P256_HALF_N.toString(16).padStart(64, '0'), 'hex');

/** n as 32 big-endian bytes, for `n - s` done on bytes. */
const P256_N_BYTES = Buffer.from(P256_N.toString(16).padStart(64, '0'), 'hex');

/** True when an ES256 signature's `s` is above n/2 (checked on every token issued and verified: bytes, not a BigInt). */
export function isHighS(signature: Buffer): boolean {
  return Buffer.compare(signature.subarray(32, 64), P256_HALF_N_BYTES) > 0;
}

/** Rewrites an ES256 JWT's signature to its low-S form (s ≤ n/2), as Bitcoin's BIP 62 and libsecp256k1 do. */
export function lowS(token: string): string {
  const dot = token.lastIndexOf('.');
  const signature = Buffer.from(token.slice(dot + 1), 'base64url');
  if (!isHighS(signature)) return token;
  negateS(signature);
  return `${token.slice(0, dot + 1)}${signature.toString('base64url')}`;
}

/**
 * Replaces an ES256 signature's `s` (its last 32 bytes) with `n - s`, byte by byte with a borrow,
 * as schoolbook subtraction: half of all signatures take this path, where a BigInt and two hex
 * strings cost several µs. For 0 < s < n the result is in (0, n), so no borrow is left over.
 */
export function negateS(signature: Buffer): void {
  let borrow = 0;
  for (let i = 31; i >= 0; i--) {
    const d = P256_N_BYTES[i]! - signature[32 + i]! - borrow;
    signature[32 + i] = d & 0xff;
    borrow = d < 0 ? 1 : 0;
  }
}
