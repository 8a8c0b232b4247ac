import * as crypto from 'node:crypto';
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import type { Random } from '../random.js';

/**
 * Refresh tokens are opaque to clients: a type prefix ("rt1_", so one can never pass for a JWT,
 * which always starts "ey"), then base64url of the session's 16 id bytes and 256 random bits.
 * The session id is a routing key, not a secret (access tokens carry it as `sid`): it lets a
 * store keep every key of a session together (one Redis Cluster hash slot). The store never
 * sees a token, only its SHA-256 (fosite `token/hmac`); 256 bits of entropy make a plain hash as
 * strong as an HMAC here.
 */
export const REFRESH_TOKEN_PREFIX = 'rt1_';
const SESSION_BYTES = 16;
const RANDOM_BYTES = 32;
export const REFRESH_TOKEN_LENGTH = REFRESH_TOKEN_PREFIX.length + 64;
const SHAPE = /^rt1_[A-Za-z0-9_-]{64}$/;
const SESSION_ID = /^ses_[A-Za-z0-9_-]{22}$/;

const SEAL_INFO = 'auth.v1 refresh-token successor';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface NewRefreshToken {
  readonly token: string;
  /** What the store keys the token by. */
  readonly hash: string;
}

/** What a well-formed token says of itself; whether it is valid only the store can tell. */
export interface ParsedRefreshToken {
  readonly sessionId: string;
  readonly hash: string;
}

/**
 * How refresh tokens are made and read: the flows see only this interface (fosite's
 * `RefreshTokenStrategy`), so the token format can change without touching them.
 */
export interface RefreshTokenStrategy {
  /** A new token of the session `sessionId`, and the hash the store keys it by. */
  generate(sessionId: string): NewRefreshToken;
  /** The session and store key of a token of the right shape; undefined for anything else. */
  parse(token: string): ParsedRefreshToken | undefined;
  /** `successor`, sealed so that only a holder of `parent` can open it. */
  seal(parent: string, successor: string): string;
  /** Opens a sealed successor; undefined when it was sealed under another parent or altered. */
  open(parent: string, sealed: string): string | undefined;
}

/** The default strategy: opaque, prefixed tokens stored by SHA-256 (see the module comment). */
export class OpaqueRefreshTokens implements RefreshTokenStrategy {
  constructor(private readonly random: Random) {}

  /** A new token of the session `sessionId` (an id made by `newId(…, 'ses')`). */
  generate(sessionId: string): NewRefreshToken {
    if (!SESSION_ID.test(sessionId)) throw new Error('refresh tokens belong to a session id of the form ses_<22 base64url>');
    const body = Buffer.allocUnsafe(SESSION_BYTES + RANDOM_BYTES);
    body.write(sessionId.slice(4), 0, SESSION_BYTES, 'base64url');
    this.random.bytes(RANDOM_BYTES).copy(body, SESSION_BYTES);
    const token = REFRESH_TOKEN_PREFIX + body.toString('base64url');
    return { token, hash: hashRefreshToken(token) };
  }

  /** The session and store key of a token of the right shape; undefined for anything else. */
  parse(token: string): ParsedRefreshToken | undefined {
    if (typeof token !== 'string' || token.length !== REFRESH_TOKEN_LENGTH || !SHAPE.test(token)) return undefined;
    const sessionBytes = Buffer.from(token.slice(REFRESH_TOKEN_PREFIX.length), 'base64url').subarray(0, SESSION_BYTES);
    return { sessionId: `ses_${sessionBytes.toString('base64url')}`, hash: hashRefreshToken(token) };
  }

  /**
   * Seals `successor` so that only a holder of `parent` can open it: AES-256-GCM under a key
   * derived from the parent token. The store keeps this to answer a retry of the parent within
   * the reuse interval with the same successor, without holding a usable token.
   */
  seal(parent: string, successor: string): string {
    const nonce = this.random.bytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', sealKey(parent), nonce);
    const body = Buffer.concat([cipher.update(successor, 'utf8'), cipher.final()]);
    return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** Opens a sealed successor; undefined when it was sealed under another parent or altered. */
  open(parent: string, sealed: string): string | undefined {
    try {
      const raw = Buffer.from(sealed, 'base64url');
      if (raw.length <= NONCE_BYTES + TAG_BYTES) return undefined;
      const decipher = createDecipheriv('aes-256-gcm', sealKey(parent), raw.subarray(0, NONCE_BYTES));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}

/** The store key of a refresh token: base64url SHA-256. */
export function hashRefreshToken(token: string): string {
  return sha256(token, 'base64url');
}

// A key independent of the store key (SHA-256 of the bare token): SHA-256 of a label and the
// token's 256 random bits, the label keeping the two domains apart.
function sealKey(parent: string): Buffer {
  return sha256(`${SEAL_INFO}\0${parent}`, 'buffer');
}

// `crypto.hash` (Node 20.12+) skips the Hash object, half the cost for a short input; the
// fallback gives the same bytes, so instances on different Node versions agree.
const oneShotHash = typeof crypto.hash === 'function' ? crypto.hash : undefined;

function sha256(data: string, encoding: 'base64url'): string;
function sha256(data: string, encoding: 'buffer'): Buffer;
function sha256(data: string, encoding: 'base64url' | 'buffer'): string | Buffer {
  if (oneShotHash) return encoding === 'buffer' ? oneShotHash('sha256', data, 'buffer') : oneShotHash('sha256', data, encoding);
  const digest = createHash('sha256').update(data);
  return encoding === 'buffer' ? digest.digest() : digest.digest(encoding);
}
