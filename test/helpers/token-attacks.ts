import { createSign, generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { lowS, type InvalidReason } from '../../src/core/access-token';
import type { SigningKey } from '../../src/core/keys';

/**
 * The token attack catalogue, one row per attack with the exact reason it must get. The core
 * verifier test and the gRPC test (Validate and the interceptor, which share the verifier) both
 * run every row.
 */
export interface AttackContext {
  /** The service's ES256 signing key. */
  readonly key: SigningKey;
  /** The verifier's clock, in seconds. */
  readonly now: () => number;
  readonly issuer: string;
  readonly audience: string;
  /** A token the service itself just issued. */
  readonly validToken: () => string;
}

export interface TokenAttack {
  readonly name: string;
  readonly token: () => string;
  readonly want: InvalidReason;
}

export const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export function attackHelpers(ctx: AttackContext) {
  const goodClaims = () => ({ iss: ctx.issuer, aud: ctx.audience, sub: 'usr_1', username: 'alice', roles: [] as string[], sid: 'ses_1', jti: 'j1', iat: ctx.now(), exp: ctx.now() + 900 });
  const goodHeader = () => ({ alg: 'ES256', typ: 'at+jwt', kid: ctx.key.kid });
  /** Signs arbitrary header and payload (objects, or raw JSON text) with a key, bypassing jsonwebtoken's checks. */
  const signRaw = (header: unknown, payload: unknown, signKey = ctx.key.signKey): string => {
    const input = `${b64(header)}.${b64(payload)}`;
    const sig = createSign('SHA256').update(input).sign({ key: signKey, dsaEncoding: 'ieee-p1363' });
    // Low-S, as the service signs: a row fails for the reason it names, not for its S.
    return lowS(`${input}.${sig.toString('base64url')}`);
  };
  return { goodClaims, goodHeader, signRaw };
}

export function tokenAttacks(ctx: AttackContext): TokenAttack[] {
  const { goodClaims, goodHeader, signRaw } = attackHelpers(ctx);
  const now = ctx.now;
  const key = ctx.key;
  const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const pemPublic = key.verifyKey.export({ format: 'pem', type: 'spki' }).toString();
  const claimsJson = () => JSON.stringify(goodClaims());

  return [
    { name: 'empty', token: () => '', want: 'malformed' },
    { name: 'the high-S twin of a valid token (ECDSA malleability)', token: () => highSTwin(ctx.validToken()), want: 'malformed' },
    { name: 'two segments', token: () => 'a.b', want: 'malformed' },
    { name: 'four segments', token: () => `${ctx.validToken()}.x`, want: 'malformed' },
    { name: 'standard base64 characters', token: () => ctx.validToken().replace(/.$/, '+'), want: 'malformed' },
    { name: 'padding', token: () => `${ctx.validToken()}=`, want: 'malformed' },
    { name: 'whitespace', token: () => ` ${ctx.validToken()}`, want: 'malformed' },
    { name: 'header not JSON', token: () => `${b64('nope')}.${b64(goodClaims())}.sig`, want: 'malformed' },
    { name: 'header is an array', token: () => `${b64([1])}.${b64(goodClaims())}.sig`, want: 'malformed' },
    { name: 'oversized (8 KiB)', token: () => signRaw(goodHeader(), { ...goodClaims(), pad: 'x'.repeat(8192) }), want: 'malformed' },
    { name: 'alg none', token: () => `${b64({ alg: 'none', typ: 'at+jwt', kid: key.kid })}.${b64(goodClaims())}.`, want: 'malformed' },
    { name: 'alg none with a signature segment', token: () => `${b64({ alg: 'none', typ: 'at+jwt', kid: key.kid })}.${b64(goodClaims())}.AA`, want: 'wrong_algorithm' },
    { name: 'alg NONE', token: () => `${b64({ alg: 'NONE', typ: 'at+jwt', kid: key.kid })}.${b64(goodClaims())}.AA`, want: 'wrong_algorithm' },
    {
      name: 'HS256 signed with the public key (algorithm confusion)',
      token: () => jwt.sign(goodClaims(), pemPublic, { algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt', kid: key.kid } }),
      want: 'wrong_algorithm',
    },
    { name: 'signed by a foreign key with our kid', token: () => signRaw(goodHeader(), goodClaims(), otherKey), want: 'bad_signature' },
    { name: 'unknown kid', token: () => signRaw({ ...goodHeader(), kid: 'other' }, goodClaims()), want: 'bad_signature' },
    { name: 'kid with path traversal', token: () => signRaw({ ...goodHeader(), kid: '../../etc/passwd' }, goodClaims()), want: 'bad_signature' },
    { name: 'no kid', token: () => signRaw({ alg: 'ES256', typ: 'at+jwt' }, goodClaims()), want: 'bad_signature' },
    ...['jku', 'x5u', 'jwk', 'x5c', 'crit'].map((h) => ({ name: `${h} header`, token: () => signRaw({ ...goodHeader(), [h]: h === 'crit' ? ['exp'] : 'x' }, goodClaims()), want: 'malformed' as const })),
    { name: 'typ JWT', token: () => signRaw({ ...goodHeader(), typ: 'JWT' }, goodClaims()), want: 'wrong_token_type' },
    { name: 'typ missing', token: () => signRaw({ alg: 'ES256', kid: key.kid }, goodClaims()), want: 'wrong_token_type' },
    { name: 'signature r=s=0', token: () => `${b64(goodHeader())}.${b64(goodClaims())}.${Buffer.alloc(64).toString('base64url')}`, want: 'bad_signature' },
    { name: 'signature of wrong length', token: () => `${b64(goodHeader())}.${b64(goodClaims())}.${Buffer.alloc(10, 1).toString('base64url')}`, want: 'malformed' },
    { name: 'payload is a JSON string', token: () => signRaw(goodHeader(), JSON.stringify('hello')), want: 'malformed' },
    { name: 'payload is a number', token: () => signRaw(goodHeader(), '42'), want: 'malformed' },
    ...(['exp', 'sub', 'jti', 'sid', 'iat'] as const).map((claim) => ({
      name: `missing ${claim}`,
      token: () => {
        const c: Record<string, unknown> = goodClaims();
        delete c[claim];
        return signRaw(goodHeader(), c);
      },
      want: 'malformed' as const,
    })),
    { name: 'exp as a string', token: () => signRaw(goodHeader(), { ...goodClaims(), exp: String(now() + 900) }), want: 'malformed' },
    { name: 'roles not an array of strings', token: () => signRaw(goodHeader(), { ...goodClaims(), roles: [1] }), want: 'malformed' },
    { name: 'expired beyond the skew', token: () => signRaw(goodHeader(), { ...goodClaims(), iat: now() - 1000, exp: now() - 30 }), want: 'expired' },
    { name: 'nbf in the future', token: () => signRaw(goodHeader(), { ...goodClaims(), nbf: now() + 31 }), want: 'not_yet_valid' },
    { name: 'iat in the future beyond the skew', token: () => signRaw(goodHeader(), { ...goodClaims(), iat: now() + 31, exp: now() + 931 }), want: 'not_yet_valid' },
    { name: 'wrong issuer', token: () => signRaw(goodHeader(), { ...goodClaims(), iss: 'https://evil' }), want: 'wrong_issuer' },
    { name: 'wrong audience', token: () => signRaw(goodHeader(), { ...goodClaims(), aud: 'other' }), want: 'wrong_audience' },
    {
      name: 'missing audience',
      token: () => {
        const { aud: _aud, ...c } = goodClaims();
        return signRaw(goodHeader(), c);
      },
      want: 'wrong_audience',
    },
  
    { name: 'kid with odd characters', token: () => signRaw({ ...goodHeader(), kid: '\u0000<script>%00' }, goodClaims()), want: 'bad_signature' },
    { name: 'kid as a number', token: () => signRaw({ ...goodHeader(), kid: 1 }, goodClaims()), want: 'bad_signature' },
    { name: 'duplicate claim keys', token: () => signRaw(goodHeader(), claimsJson().replace('"sub":"usr_1"', '"sub":"usr_1","sub":"usr_admin"')), want: 'malformed' },
    { name: 'duplicate claim keys, one escaped', token: () => signRaw(goodHeader(), claimsJson().replace('"sub":"usr_1"', '"sub":"usr_1","\\u0073ub":"usr_admin"')), want: 'malformed' },
    { name: 'duplicate header keys', token: () => signRaw(JSON.stringify(goodHeader()).replace('"alg":"ES256"', '"alg":"none","alg":"ES256"'), goodClaims()), want: 'malformed' },
    { name: 'exp far in the future but iat missing', token: () => signRaw(goodHeader(), { ...goodClaims(), iat: undefined, exp: now() + 10 ** 9 }), want: 'malformed' },
    { name: 'exp before iat', token: () => signRaw(goodHeader(), { ...goodClaims(), exp: now() - 1 }), want: 'malformed' },
    { name: 'a 64 KiB token', token: () => `${b64(goodHeader())}.${'A'.repeat(64 * 1024)}.sig`, want: 'malformed' },
    { name: 'a 1 MiB token', token: () => `${b64(goodHeader())}.${'A'.repeat(1024 * 1024)}.sig`, want: 'malformed' },
    { name: 'a refresh token', token: () => 'rt2_' + 'A'.repeat(112), want: 'malformed' },
  ];
}

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** The same token with s replaced by n − s: a second signature that verifies, as ECDSA allows. */
export function highSTwin(token: string): string {
  const dot = token.lastIndexOf('.');
  const sig = Buffer.from(token.slice(dot + 1), 'base64url');
  const s = BigInt(`0x${sig.subarray(32).toString('hex')}`);
  Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex').copy(sig, 32);
  return `${token.slice(0, dot + 1)}${sig.toString('base64url')}`;
}
