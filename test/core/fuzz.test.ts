import fc from 'fast-check';
import { ManualClock } from '../../src/clock';
import { systemRandom } from '../../src/random';
import { AccessTokenIssuer, AccessTokenVerifier } from '../../src/core/access-token';
import { createKeySet, generateEcKey, hmacSigningKey, refreshTagKeys } from '../../src/core/keys';
import { OpaqueRefreshTokens } from '../../src/core/refresh-token';

/** Property-based tests: hostile input never throws and never verifies. */
const options = { issuer: 'iss', audience: 'aud', accessTtlMs: 900_000, clockSkewMs: 30_000 };
const subject = { userId: 'usr_1', username: 'alice', roles: ['admin'], sessionId: 'ses_AAAAAAAAAAAAAAAAAAAAAA' };
const clock = new ManualClock();

describe.each([
  { alg: 'ES256', keys: createKeySet([generateEcKey()]) },
  { alg: 'HS256', keys: createKeySet([hmacSigningKey(Buffer.alloc(32, 9))]) },
])('$alg verifier', ({ keys }) => {
  const verifier = new AccessTokenVerifier(keys, options, clock);
  const valid = new AccessTokenIssuer(keys, options, clock, systemRandom).issue(subject).token;
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

  test('arbitrary strings never throw and never verify', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (s) => {
        expect(verifier.verify(s).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  test('arbitrary bytes in JWT shape never throw and never verify', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 400 }), fc.uint8Array({ maxLength: 100 }), (h, p, sig) => {
        expect(verifier.verify(`${b64(h)}.${b64(p)}.${b64(sig)}`).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  test('arbitrary JSON header and payload, signed by nobody, never verify', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (h, p) => {
        const token = `${Buffer.from(JSON.stringify(h)).toString('base64url')}.${Buffer.from(JSON.stringify(p) ?? '').toString('base64url')}.${valid.split('.')[2]}`;
        expect(verifier.verify(token).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  test('any single-character change of a valid token never verifies', () => {
    expect(verifier.verify(valid).ok).toBe(true);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    fc.assert(
      fc.property(fc.nat({ max: valid.length - 1 }), fc.constantFrom(...alphabet), (at, c) => {
        fc.pre(valid[at] !== c);
        expect(verifier.verify(valid.slice(0, at) + c + valid.slice(at + 1)).ok).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  test('every single character of the signature, changed to every other base64url character, fails', () => {
    const sigStart = valid.lastIndexOf('.') + 1;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (const at of [sigStart, valid.length - 2, valid.length - 1]) {
      for (const c of alphabet) {
        if (c === valid[at]) continue;
        expect(verifier.verify(valid.slice(0, at) + c + valid.slice(at + 1)).ok).toBe(false);
      }
    }
  });

  test('any single-bit flip in any decoded segment never verifies', () => {
    const parts = valid.split('.').map((p) => Buffer.from(p, 'base64url'));
    fc.assert(
      fc.property(fc.nat({ max: 2 }), fc.nat(), fc.nat({ max: 7 }), (segment, byte, bit) => {
        const copy = parts.map((p) => Buffer.from(p));
        const target = copy[segment]!;
        target[byte % target.length] ^= 1 << bit;
        expect(verifier.verify(copy.map((p) => p.toString('base64url')).join('.')).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('refresh-token parser', () => {
  const refreshTokens = new OpaqueRefreshTokens(systemRandom, refreshTagKeys(createKeySet([generateEcKey()])));

  test('arbitrary strings never throw; anything it accepts has the exact shape', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 140 }), fc.stringMatching(/^rt2_[A-Za-z0-9_+/=-]{108,116}$/)), (s) => {
        // Nothing arbitrary carries a valid tag, and the parser never throws.
        expect(refreshTokens.parse(s)?.tagged ?? false).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  test('a sealed successor never opens with arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), fc.string({ maxLength: 200 }), (parent, sealed) => {
        expect(refreshTokens.open(parent, sealed)).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
  });
});
