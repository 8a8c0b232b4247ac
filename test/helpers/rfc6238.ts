import { createHmac } from 'node:crypto';

/**
 * RFC 6238 TOTP written here from the RFC, for tests only: the service computes codes with the
 * `otpauth` library, and tests must not check it against itself. Checked against the RFC's own
 * test vectors (Appendix B) in test/core/totp.test.ts.
 */
export function base32Decode(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of text.replace(/=+$/, '').toUpperCase()) {
    const value = alphabet.indexOf(ch);
    if (value < 0) throw new Error(`not base32: ${ch}`);
    bits += value.toString(2).padStart(5, '0');
  }
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** HOTP (RFC 4226 section 5.3) of counter `t` with SHA-1, `digits` long. */
export function hotp(key: Buffer, t: number, digits = 6): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(t));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return String(binary).padStart(digits, '0');
}

/** The TOTP code (30-second steps from the Unix epoch) of a base32 secret at `nowMs`, `stepOffset` steps away. */
export function rfc6238(secretBase32: string, nowMs: number, stepOffset = 0, digits = 6): string {
  return hotp(base32Decode(secretBase32), Math.floor(nowMs / 1000 / 30) + stepOffset, digits);
}
