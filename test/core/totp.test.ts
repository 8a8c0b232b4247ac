import { isTotpCode, newTotpSecret, otpauthUri, totpStep } from '../../src/core/totp';
import { canonicalHumanCode, humanCodeDigest, newHumanCode } from '../../src/core/user-secrets';
import { systemRandom } from '../../src/random';
import { base32Decode, hotp, rfc6238 } from '../helpers/rfc6238';

describe("the tests' own RFC 6238", () => {
  // RFC 6238 Appendix B, SHA-1 rows: the key is the ASCII "12345678901234567890".
  test.each([
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ])('T = %i s gives %s', (seconds, code) => {
    expect(hotp(Buffer.from('12345678901234567890'), Math.floor(seconds / 30), 8)).toBe(code);
  });
});

describe('the service TOTP (otpauth) against the independent one', () => {
  const now = Date.UTC(2030, 0, 1, 12, 0, 15);

  test('a secret is 160 bits of base32; its URI is the Key Uri Format authenticator apps read', () => {
    const secret = newTotpSecret(systemRandom);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(secret)).toHaveLength(20);
    const uri = new URL(otpauthUri(secret, 'Example Co', 'alice'));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/Example Co:alice');
    expect(Object.fromEntries(uri.searchParams)).toEqual({ secret, issuer: 'Example Co', algorithm: 'SHA1', digits: '6', period: '30' });
  });

  test('codes of the step before, this one and the next are accepted, with their steps; two steps away is not', () => {
    const secret = newTotpSecret(systemRandom);
    const step = Math.floor(now / 30_000);
    for (const offset of [-1, 0, 1]) expect(totpStep(secret, rfc6238(secret, now, offset), now)).toBe(step + offset);
    for (const offset of [-2, 2]) expect(totpStep(secret, rfc6238(secret, now, offset), now)).toBeUndefined();
  });

  test.each(['', '12345', '1234567', '12a456', '１２３４５６', ' 123456'])('%j is not a code', (code) => {
    expect(isTotpCode(code)).toBe(false);
  });
});

describe('human codes (recovery and reset codes)', () => {
  test('16 Crockford base32 characters in groups of four: 80 bits; typed in any case, with or without dashes', () => {
    const code = newHumanCode(systemRandom);
    expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
    expect(humanCodeDigest(code.toLowerCase().replaceAll('-', ''))).toBe(humanCodeDigest(code));
    expect(humanCodeDigest(` ${code.replaceAll('-', ' ')} `)).toBe(humanCodeDigest(code));
    expect(canonicalHumanCode('0000-1111-2222-333')).toBeUndefined();
    expect(canonicalHumanCode('OOOO-IIII-LLLL-0000')).toBe('0000111111110000');
  });
});
