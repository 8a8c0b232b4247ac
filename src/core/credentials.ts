import unhomoglyph from 'unhomoglyph';
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

/** C0 and C1 controls and DEL: no name, id or prefix of this service holds one (and PostgreSQL refuses NUL). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** A UTF-16 surrogate without its pair (JSON can carry one; UTF-8 cannot). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Refuses a free-text query field (a name prefix) that no stored name can match: control
 * characters, or UTF-16 that is not well formed. Checked at the edge, the same for every store.
 */
export function checkQueryText(field: string, value: string): void {
  if (!isPlainText(value)) throw new AuthError('invalid_argument', `${field} must not contain control characters`);
}

/** Whether a value read back from a client (a page token's position) is text a name can be. */
export function isPlainText(value: string): boolean {
  return !CONTROL.test(value) && !LONE_SURROGATE.test(value);
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

/**
 * Scripts a username's letters are told apart by (Unicode Script_Extensions). Letters of a script
 * not listed count as one "other" script: a name of them alone is allowed, mixed with a listed one
 * it is not.
 */
const SCRIPTS = [
  'Latin', 'Greek', 'Cyrillic', 'Armenian', 'Hebrew', 'Arabic', 'Syriac', 'Thaana', 'Nko', 'Devanagari', 'Bengali', 'Gurmukhi',
  'Gujarati', 'Oriya', 'Tamil', 'Telugu', 'Kannada', 'Malayalam', 'Sinhala', 'Thai', 'Lao', 'Tibetan', 'Myanmar', 'Georgian',
  'Hangul', 'Ethiopic', 'Cherokee', 'Canadian_Aboriginal', 'Ogham', 'Runic', 'Khmer', 'Mongolian', 'Hiragana', 'Katakana',
  'Bopomofo', 'Han', 'Yi', 'Tifinagh', 'Vai', 'Javanese', 'Balinese', 'Sundanese', 'Adlam', 'Coptic', 'Glagolitic',
] as const;
const SCRIPT_TESTS = SCRIPTS.map((name) => [name, new RegExp(`^\\p{Script_Extensions=${name}}$`, 'u')] as const);
const NEUTRAL = /^[\p{Script=Common}\p{Script=Inherited}]$/u;
/** UTS 39 section 5.1: Han is written with Hiragana and Katakana (Japanese), Hangul (Korean) or Bopomofo. */
const AUGMENTED: Record<string, readonly string[]> = { Han: ['Han', 'Jpan', 'Kore', 'Hanb'], Hiragana: ['Hiragana', 'Jpan'], Katakana: ['Katakana', 'Jpan'], Hangul: ['Hangul', 'Kore'], Bopomofo: ['Bopomofo', 'Hanb'] };

/** The writing systems Latin may join (UTS 39 highly restrictive): Japanese, Korean, Chinese with Bopomofo. */
const CJK_WRITING: readonly string[] = ['Jpan', 'Kore', 'Hanb'];

function scriptsOf(ch: string): Set<string> {
  const found = new Set<string>();
  for (const [name, test] of SCRIPT_TESTS) if (test.test(ch)) for (const s of AUGMENTED[name] ?? [name]) found.add(s);
  return found.size > 0 ? found : new Set(['other']);
}

/**
 * The mixed-script rule of UTS 39's "highly restrictive" profile, for new usernames: every letter
 * in one script (digits and punctuation of no script aside), or Latin with Japanese, Korean or
 * Chinese writing. Throws `invalid_argument` naming the scripts mixed. `alicе` with a Cyrillic е
 * is refused here; a look-alike written in one script is caught by `usernameSkeleton`.
 */
export function checkUsernameScripts(name: string): void {
  let resolved: Set<string> | undefined;
  let latin = false;
  const seen = new Set<string>();
  for (const ch of name) {
    if (NEUTRAL.test(ch)) continue;
    const scripts = scriptsOf(ch);
    if (scripts.has('Latin')) {
      latin = true;
      seen.add('Latin');
      continue;
    }
    for (const s of scripts) if (!CJK_WRITING.includes(s)) seen.add(s);
    resolved = resolved === undefined ? scripts : new Set([...resolved].filter((s) => scripts.has(s)));
  }
  const ok = resolved === undefined || (resolved.size > 0 && (!latin || CJK_WRITING.some((s) => resolved!.has(s))));
  if (!ok) throw new AuthError('invalid_argument', `username mixes scripts (${[...seen].slice(0, 4).join(', ')}): write it in one`);
}

const MARKS = /\p{M}/gu;

/**
 * A username's skeleton: what it looks like, whatever it is made of. UTS 39 section 4 (NFD, the
 * confusables mapping of Unicode's confusables.txt through `unhomoglyph`, NFD again), with every
 * combining mark dropped as well, so `alíce`, `alıce`, `аlice` (Cyrillic а) and `alice` share one.
 * The store refuses a new user whose skeleton another user holds. Takes the canonical name.
 */
export function usernameSkeleton(name: string): string {
  const bare = (s: string) => s.normalize('NFD').replace(MARKS, '');
  return bare(unhomoglyph(bare(name))).toLowerCase();
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
export const REFRESH_TOKEN_FIELD_MAX = 1024;

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
