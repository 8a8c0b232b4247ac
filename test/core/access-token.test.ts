import { createSign, generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { ManualClock, systemRandom } from '../../src/clock';
import { AccessTokenIssuer, AccessTokenVerifier, type InvalidReason } from '../../src/core/access-token';
import { createKeySet, generateEcKey, hmacSigningKey, jwkThumbprint } from '../../src/core/keys';

const options = { issuer: 'https://auth.test', audience: 'svc', accessTtl: 900, clockSkew: 30 };
const subject = { userId: 'usr_1', username: 'alice', roles: ['admin'], sessionId: 'ses_1' };

const clock = new ManualClock(Date.UTC(2030, 0, 1));
const key = generateEcKey();
const keys = createKeySet([key]);
const issuer = new AccessTokenIssuer(keys, options, clock, systemRandom);
const verifier = new AccessTokenVerifier(keys, options, clock);
const now = () => Math.floor(clock.now() / 1000);

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const goodClaims = () => ({ iss: options.issuer, aud: options.audience, sub: 'usr_1', username: 'alice', roles: [], sid: 'ses_1', jti: 'j1', iat: now(), exp: now() + 900 });
const goodHeader = () => ({ alg: 'ES256', typ: 'at+jwt', kid: key.kid });

/** Signs arbitrary header and payload with our ES256 key, bypassing jsonwebtoken's own checks. */
function signRaw(header: unknown, payload: unknown, signKey = key.signKey): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const sig = createSign('SHA256').update(input).sign({ key: signKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

describe('AccessTokenIssuer', () => {
  test('RFC 9068 shape: typ at+jwt, kid = RFC 7638 thumbprint, required claims', () => {
    const { token, expiresIn, claims } = issuer.issue(subject);
    const decoded = jwt.decode(token, { complete: true })!;
    expect(decoded.header).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: jwkThumbprint(key.verifyKey.export({ format: 'jwk' }) as Record<string, unknown>) });
    expect(decoded.payload).toEqual({ iss: options.issuer, aud: options.audience, sub: 'usr_1', username: 'alice', roles: ['admin'], sid: 'ses_1', jti: claims.jti, iat: now(), exp: now() + 900 });
    expect(expiresIn).toBe(900);
  });

  test('expiry is capped at the session end', () => {
    const { expiresIn } = issuer.issue(subject, clock.now() + 60_000);
    expect(expiresIn).toBe(60);
  });

  test('RFC 7638 thumbprint matches the RFC 7638 section 3.1 example', () => {
    const jwk = {
      kty: 'RSA',
      e: 'AQAB',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    };
    expect(jwkThumbprint(jwk)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });
});

describe('AccessTokenVerifier', () => {
  test('a fresh token verifies', () => {
    const { token } = issuer.issue(subject);
    expect(verifier.verify(token)).toEqual({ ok: true, claims: expect.objectContaining({ sub: 'usr_1', sid: 'ses_1', roles: ['admin'] }) });
  });

  const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const pemPublic = key.verifyKey.export({ format: 'pem', type: 'spki' }).toString();

  const cases: Array<{ name: string; token: () => string; want: InvalidReason }> = [
    { name: 'empty', token: () => '', want: 'malformed' },
    { name: 'two segments', token: () => 'a.b', want: 'malformed' },
    { name: 'four segments', token: () => `${issuer.issue(subject).token}.x`, want: 'malformed' },
    { name: 'standard base64 characters', token: () => issuer.issue(subject).token.replace(/.$/, '+'), want: 'malformed' },
    { name: 'padding', token: () => `${issuer.issue(subject).token}=`, want: 'malformed' },
    { name: 'whitespace', token: () => ` ${issuer.issue(subject).token}`, want: 'malformed' },
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
  ];

  test.each(cases)('$name → $want', ({ token, want }) => {
    expect(verifier.verify(token())).toEqual({ ok: false, reason: want });
  });

  test.each([
    { name: 'exp just inside the skew', exp: () => now() - 29, ok: true },
    { name: 'exp exactly at the skew', exp: () => now() - 30, ok: false },
    { name: 'iat exactly at the skew in the future', exp: () => now() + 900, iat: () => now() + 30, ok: true },
  ])('leeway edge: $name', ({ exp, iat, ok }) => {
    const token = signRaw(goodHeader(), { ...goodClaims(), iat: iat ? iat() : now() - 900, exp: exp() });
    expect(verifier.verify(token).ok).toBe(ok);
  });

  test('audience given as an array that contains ours is accepted', () => {
    expect(verifier.verify(signRaw(goodHeader(), { ...goodClaims(), aud: ['other', options.audience] })).ok).toBe(true);
  });

  test('application/at+jwt is the same type (RFC 7515 section 4.1.9)', () => {
    expect(verifier.verify(signRaw({ ...goodHeader(), typ: 'application/at+jwt' }, goodClaims())).ok).toBe(true);
  });

  test('HS256 key set: pins HS256 and refuses ES256 tokens', () => {
    const hsKeys = createKeySet([hmacSigningKey(Buffer.alloc(32, 7))]);
    const hsIssuer = new AccessTokenIssuer(hsKeys, options, clock, systemRandom);
    const hsVerifier = new AccessTokenVerifier(hsKeys, options, clock);
    expect(hsVerifier.verify(hsIssuer.issue(subject).token).ok).toBe(true);
    expect(hsVerifier.verify(issuer.issue(subject).token)).toEqual({ ok: false, reason: 'wrong_algorithm' });
    expect(() => hmacSigningKey(Buffer.alloc(31))).toThrow('at least 32 bytes');
    expect(() => hmacSigningKey(Buffer.alloc(0))).toThrow('at least 32 bytes');
  });
});
