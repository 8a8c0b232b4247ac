import { AuthError } from '../errors.js';

/**
 * Username and password rules (NIST SP 800-63B section 5.1.1.2): Unicode NFKC on every path,
 * lengths counted in code points after normalising, a byte cap before any work, no truncation,
 * no composition rules.
 */
export const USERNAME_MIN = 3;
export const USERNAME_MAX = 64;
export const PASSWORD_MAX = 128;
/** Raw UTF-8 bytes accepted in a field before normalising (NFKC can expand a string up to 18x). */
export const USERNAME_MAX_BYTES = 256;
export const PASSWORD_MAX_BYTES = 1024;

const USERNAME_CHARS = /^[\p{L}\p{N}._@+-]+$/u;

export interface PasswordPolicy {
  readonly minLength: number;
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function requireField(name: string, value: string, maxBytes: number): void {
  if (value.length === 0) throw new AuthError('invalid_argument', `${name} is required`);
  if (Buffer.byteLength(value, 'utf8') > maxBytes) throw new AuthError('invalid_argument', `${name} must be at most ${maxBytes} bytes`);
}

/** Checks presence and byte size only; for Login, which must not reveal the registration rules. */
export function checkLoginFields(username: string, password: string): void {
  requireField('username', username, USERNAME_MAX_BYTES);
  requireField('password', password, PASSWORD_MAX_BYTES);
}

/** NFKC then lower case: the form usernames are stored and compared in. Undefined if it breaks the rules. */
export function canonicalUsername(raw: string): string | undefined {
  const name = raw.normalize('NFKC').toLowerCase();
  const length = codePoints(name);
  if (length < USERNAME_MIN || length > USERNAME_MAX || !USERNAME_CHARS.test(name)) return undefined;
  return name;
}

/** Validates a new username; throws `invalid_argument` naming the rule. */
export function validateNewUsername(raw: string): string {
  requireField('username', raw, USERNAME_MAX_BYTES);
  const name = canonicalUsername(raw);
  if (name === undefined) {
    throw new AuthError('invalid_argument', `username must be ${USERNAME_MIN} to ${USERNAME_MAX} characters: letters, digits and . _ - @ +`);
  }
  return name;
}

/** NFKC form of a password, the form that is hashed and checked. */
export function normalizePassword(raw: string): string {
  return raw.normalize('NFKC');
}

/** Validates a new password; throws `invalid_argument` naming the rule. */
export function validateNewPassword(raw: string, policy: PasswordPolicy): string {
  requireField('password', raw, PASSWORD_MAX_BYTES);
  const password = normalizePassword(raw);
  const length = codePoints(password);
  if (length < policy.minLength) throw new AuthError('invalid_argument', `password must be at least ${policy.minLength} characters`);
  if (length > PASSWORD_MAX) throw new AuthError('invalid_argument', `password must be at most ${PASSWORD_MAX} characters`);
  return password;
}

/** Refresh tokens are 47 characters; anything far longer is refused as an oversized field. */
export const REFRESH_TOKEN_FIELD_MAX = 512;

const ROLE = /^[a-z][a-z0-9_.-]{0,63}$/;
/** The most roles one user or service account holds. */
export const MAX_ROLES = 32;

/** Checks a role list (lower-case names, no duplicates, at most MAX_ROLES); returns it sorted. */
export function validateRoles(roles: readonly string[]): string[] {
  if (roles.length > MAX_ROLES) throw new AuthError('invalid_argument', `at most ${MAX_ROLES} roles`);
  const bad = roles.find((r) => !ROLE.test(r));
  if (bad !== undefined) throw new AuthError('invalid_argument', `invalid role "${bad.slice(0, 64)}" (lower-case letters, digits, _ . -; at most 64)`);
  return [...new Set(roles)].sort();
}
