import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import type { Random } from '../random.js';
import { idBytes, idFromBytes } from './ids.js';
import { sha256 } from './sha256.js';

/**
 * Refresh tokens are opaque to clients: a type prefix ("rt2_", so one can never pass for a JWT,
 * which always starts "ey"), then base64url of
 *
 *   user id (16 bytes) | session id (16) | generation (4, big-endian) | random (32) | tag (16)
 *
 * The ids are routing keys, not secrets (access tokens carry them as `sub` and `sid`): they let
 * a store keep a user's sessions together (one Redis Cluster hash slot). The generation counts
 * the session's rotations; the tag, an HMAC under a server key, proves the server issued the
 * token. So a store keeps only the current token's hash (and, for the reuse interval, the
 * previous one's): a token of an older generation that carries a valid tag was issued by this
 * service and is re-use (RFC 6819 section 5.2.2.3), whatever the session's age, while a token
 * nobody issued (a guess built from a leaked `sid`) has no valid tag and can revoke nothing.
 * The store never sees a token, only its SHA-256 (fosite `token/hmac`).
 */
export const REFRESH_TOKEN_PREFIX = 'rt2_';
const ID_BYTES = 16;
const GENERATION_BYTES = 4;
const RANDOM_BYTES = 32;
const TAG_BYTES = 16;
const BODY_BYTES = 2 * ID_BYTES + GENERATION_BYTES + RANDOM_BYTES + TAG_BYTES;
const TAGGED_BYTES = BODY_BYTES - TAG_BYTES;
export const REFRESH_TOKEN_LENGTH = REFRESH_TOKEN_PREFIX.length + (BODY_BYTES / 3) * 4;
const SHAPE = new RegExp(`^${REFRESH_TOKEN_PREFIX}[A-Za-z0-9_-]{${(BODY_BYTES / 3) * 4}}$`);

const SEAL_INFO = 'auth.v1 refresh-token successor';
const NONCE_BYTES = 12;
const GCM_TAG_BYTES = 16;

export interface NewRefreshToken {
  readonly token: string;
  readonly generation: number;
  /** What the store keys the token by. */
  readonly hash: string;
}

/** What a token of this service says of itself; whether it is still good only the store can tell. */
export interface ParsedRefreshToken {
  readonly userId: string;
  readonly sessionId: string;
  readonly generation: number;
  readonly hash: string;
  /**
   * The tag verified under a key the service still holds. A token whose tag key was retired
   * (its signing key left the key list) can still be the session's current token, found by its
   * hash; it is never taken for proof of re-use.
   */
  readonly tagged: boolean;
}

/**
 * How refresh tokens are made and read: the flows see only this interface (fosite's
 * `RefreshTokenStrategy`), so the token format can change without touching them.
 */
export interface RefreshTokenStrategy {
  /** A token of the session at `generation` (0 for a new session). */
  generate(userId: string, sessionId: string, generation: number): NewRefreshToken;
  /** What a token of this format says; undefined when it is not of this format. */
  parse(token: string): ParsedRefreshToken | undefined;
  /** `successor`, sealed so that only a holder of `parent` can open it. */
  seal(parent: string, successor: string): string;
  /** Opens a sealed successor; undefined when it was sealed under another parent or altered. */
  open(parent: string, sealed: string): string | undefined;
}

/** Keys of the tag: the first tags new tokens, every one is accepted (keys rotate with the signing keys). */
export interface TagKeys {
  readonly signing: Buffer;
  readonly all: readonly Buffer[];
}

/** The default strategy: opaque, prefixed, tagged tokens stored by SHA-256 (see the module comment). */
export class OpaqueRefreshTokens implements RefreshTokenStrategy {
  constructor(
    private readonly random: Random,
    private readonly keys: TagKeys,
  ) {}

  generate(userId: string, sessionId: string, generation: number): NewRefreshToken {
    const body = Buffer.allocUnsafe(BODY_BYTES);
    idBytes(userId, 'usr').copy(body, 0);
    idBytes(sessionId, 'ses').copy(body, ID_BYTES);
    body.writeUInt32BE(generation, 2 * ID_BYTES);
    this.random.bytes(RANDOM_BYTES).copy(body, 2 * ID_BYTES + GENERATION_BYTES);
    tag(this.keys.signing, body).copy(body, TAGGED_BYTES);
    const token = REFRESH_TOKEN_PREFIX + body.toString('base64url');
    return { token, generation, hash: hashRefreshToken(token) };
  }

  parse(token: string): ParsedRefreshToken | undefined {
    if (typeof token !== 'string' || token.length !== REFRESH_TOKEN_LENGTH || !SHAPE.test(token)) return undefined;
    const body = Buffer.from(token.slice(REFRESH_TOKEN_PREFIX.length), 'base64url');
    const presented = body.subarray(TAGGED_BYTES);
    const tagged = this.keys.all.some((key) => timingSafeEqual(tag(key, body), presented));
    return {
      userId: idFromBytes('usr', body.subarray(0, ID_BYTES)),
      sessionId: idFromBytes('ses', body.subarray(ID_BYTES, 2 * ID_BYTES)),
      generation: body.readUInt32BE(2 * ID_BYTES),
      hash: hashRefreshToken(token),
      tagged,
    };
  }

  /**
   * Seals `successor` so that only a holder of `parent` can open it: AES-256-GCM under a key
   * derived from the parent token. The store keeps this to answer a retry of the parent within
   * the reuse interval with the same successor, without holding a usable token.
   */
  seal(parent: string, successor: string): string {
    const nonce = this.random.bytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', sealKey(parent), nonce);
    const sealed = Buffer.concat([cipher.update(successor, 'utf8'), cipher.final()]);
    return Buffer.concat([nonce, sealed, cipher.getAuthTag()]).toString('base64url');
  }

  open(parent: string, sealed: string): string | undefined {
    try {
      const raw = Buffer.from(sealed, 'base64url');
      if (raw.length <= NONCE_BYTES + GCM_TAG_BYTES) return undefined;
      const decipher = createDecipheriv('aes-256-gcm', sealKey(parent), raw.subarray(0, NONCE_BYTES));
      decipher.setAuthTag(raw.subarray(raw.length - GCM_TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - GCM_TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}

function tag(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body.subarray(0, TAGGED_BYTES)).digest().subarray(0, TAG_BYTES);
}

/** The store key of a refresh token: base64url SHA-256, truncated to 128 bits (the tag already proves the issuer). */
export function hashRefreshToken(token: string): string {
  return sha256(token, 'base64url').slice(0, 22);
}

// A key independent of the store key (SHA-256 of the bare token): SHA-256 of a label and the
// token, the label keeping the two domains apart.
function sealKey(parent: string): Buffer {
  return sha256(`${SEAL_INFO}\0${parent}`, 'buffer');
}
