import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import { ManualClock } from '../../src/clock';
import { systemRandom } from '../../src/random';
import { AccessTokenIssuer, AccessTokenVerifier, isHighS, negateS } from '../../src/core/access-token';
import { createKeySet, generateEcKey, hmacSigningKey, jwkThumbprint } from '../../src/core/keys';
import { attackHelpers, tokenAttacks } from '../helpers/token-attacks';

const options = { issuer: 'https://auth.test', audience: 'svc', accessTtlMs: 900_000, clockSkewMs: 30_000 };
const subject = { userId: 'usr_1', username: 'alice', roles: ['admin'], sessionId: 'ses_1' };

const clock = new ManualClock(Date.UTC(2030, 0, 1));
const key = generateEcKey();
const keys = createKeySet([key]);
const issuer = new AccessTokenIssuer(keys, options, clock, systemRandom);
const verifier = new AccessTokenVerifier(keys, options, clock);
const now = () => Math.floor(clock.now() / 1000);

const attackContext = { key, now, issuer: options.issuer, audience: options.audience, validToken: () => issuer.issue(subject).token };
const { goodClaims, goodHeader, signRaw } = attackHelpers(attackContext);

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

  const cases = tokenAttacks(attackContext);

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

  test.each([8 * 1024, 64 * 1024, 1024 * 1024])('a %p-byte token is refused before any decoding or crypto', (size) => {
    const verify = jest.spyOn(jwt, 'verify');
    const parse = jest.spyOn(JSON, 'parse');
    try {
      expect(verifier.verify('e'.repeat(size - 4) + '.a.b')).toEqual({ ok: false, reason: 'malformed' });
      expect(verify).not.toHaveBeenCalled();
      expect(parse).not.toHaveBeenCalled();
    } finally {
      verify.mockRestore();
      parse.mockRestore();
    }
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

describe('isHighS', () => {
  const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  const signatureWith = (s: bigint) => Buffer.concat([Buffer.alloc(32, 7), Buffer.from(s.toString(16).padStart(64, '0'), 'hex')]);

  test('compares s with n/2 as numbers do, at the edges and for generated values', () => {
    for (const s of [0n, 1n, N / 2n - 1n, N / 2n, N / 2n + 1n, N - 1n, 2n ** 256n - 1n]) expect(isHighS(signatureWith(s))).toBe(s > N / 2n);
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }), (s) => isHighS(signatureWith(s)) === s > N / 2n), { numRuns: 2000 });
  });
});

describe('negateS', () => {
  const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  const bytes = (s: bigint) => Buffer.from(s.toString(16).padStart(64, '0'), 'hex');
  const negated = (s: bigint) => {
    const signature = Buffer.concat([Buffer.alloc(32, 7), bytes(s)]);
    negateS(signature);
    expect(signature.subarray(0, 32)).toEqual(Buffer.alloc(32, 7));
    return BigInt(`0x${signature.subarray(32).toString('hex')}`);
  };

  test('gives n - s as BigInt arithmetic does, at the edges and for every generated s in (0, n)', () => {
    for (const s of [1n, 255n, 256n, N / 2n, N / 2n + 1n, N - 256n, N - 1n]) expect(negated(s)).toBe(N - s);
    fc.assert(fc.property(fc.bigInt({ min: 1n, max: N - 1n }), (s) => negated(s) === N - s), { numRuns: 5000 });
  });

  test('a high-S signature becomes low-S, and issued tokens are always low-S and verify', () => {
    fc.assert(fc.property(fc.bigInt({ min: N / 2n + 1n, max: N - 1n }), (s) => !isHighS(Buffer.concat([Buffer.alloc(32), bytes(negated(s))]))), { numRuns: 1000 });
    for (let i = 0; i < 200; i++) {
      const { token } = issuer.issue(subject);
      expect(isHighS(Buffer.from(token.split('.')[2]!, 'base64url'))).toBe(false);
      expect(verifier.verify(token).ok).toBe(true);
    }
  });
});
