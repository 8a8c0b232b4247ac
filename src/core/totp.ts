import { Secret, TOTP } from 'otpauth';
import type { Random } from '../random.js';

/**
 * RFC 6238 TOTP as every authenticator app reads it (the `otpauth` library): HMAC-SHA-1, 6
 * digits, 30-second steps, secrets of 160 bits (RFC 4226 section 4's recommendation).
 */
const TOTP_PERIOD_SECONDS = 30;
const DIGITS = 6;
const SECRET_BYTES = 20;
/** Codes of one step before and after the current one are accepted (clock drift of the phone). */
const WINDOW = 1;

export function newTotpSecret(random: Random): string {
  const bytes = random.bytes(SECRET_BYTES);
  return new Secret({ buffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer }).base32;
}

function totpOf(secret: string, issuer = '', label = 'user'): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: DIGITS, period: TOTP_PERIOD_SECONDS, secret: Secret.fromBase32(secret) });
}

/** The otpauth:// URI of Google Authenticator's Key Uri Format, for a QR code. */
export function otpauthUri(secret: string, issuer: string, username: string): string {
  return totpOf(secret, issuer, username).toString();
}

/** Six ASCII digits, nothing else. */
export function isTotpCode(code: string): boolean {
  return /^[0-9]{6}$/.test(code);
}

/**
 * The time step (RFC 6238's T) a code belongs to, within one step of `nowMs`, or undefined when
 * it matches none. The caller refuses steps at or before the last one accepted (replay).
 */
export function totpStep(secret: string, code: string, nowMs: number): number | undefined {
  if (!isTotpCode(code)) return undefined;
  const totp = totpOf(secret);
  const delta = totp.validate({ token: code, timestamp: nowMs, window: WINDOW });
  if (delta === null) return undefined;
  return totp.counter({ timestamp: nowMs }) + delta;
}
