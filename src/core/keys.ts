import { createHash, createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JwtAlgorithm } from '../config.js';

/**
 * A signing key with everything verification needs prepared once: KeyObjects (a PEM string per
 * call costs three times as much), the RFC 7638 thumbprint used as `kid`, and the public JWK.
 */
export interface SigningKey {
  readonly alg: JwtAlgorithm;
  readonly kid: string;
  readonly signKey: KeyObject;
  readonly verifyKey: KeyObject;
  /** The public JWK for GetJwks; undefined for HMAC keys, which are never published. */
  readonly publicJwk: Readonly<Record<string, string>> | undefined;
}

/**
 * The keys the service holds: the first signs, every one verifies. A list so that key rotation
 * (publish a new key, then sign with it, then retire the old one) needs no change here.
 */
export interface KeySet {
  readonly alg: JwtAlgorithm;
  readonly signing: SigningKey;
  /** Every key, the signing one first. */
  readonly all: readonly SigningKey[];
  byKid(kid: string): SigningKey | undefined;
  /** RFC 7517 JWK Set of the public keys, as a JSON string. */
  readonly jwksJson: string;
}

export class KeyError extends Error {
  override readonly name = 'KeyError';
}

/** RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order, base64url. */
export function jwkThumbprint(jwk: Record<string, unknown>): string {
  const required: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], oct: ['k', 'kty'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] };
  const members = required[String(jwk.kty)];
  if (!members) throw new KeyError(`unsupported JWK key type ${String(jwk.kty)}`);
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  return createHash('sha256').update(canonical).digest('base64url');
}

/** Builds an ES256 signing key from a P-256 private KeyObject, refusing any other curve. */
export function ecSigningKey(privateKey: KeyObject): SigningKey {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KeyError('ES256 needs an EC private key on curve P-256 (prime256v1)');
  }
  const verifyKey = createPublicKey(privateKey);
  const jwk = verifyKey.export({ format: 'jwk' }) as Record<string, string>;
  const kid = jwkThumbprint(jwk);
  return Object.freeze({
    alg: 'ES256' as const,
    kid,
    signKey: privateKey,
    verifyKey,
    publicJwk: Object.freeze({ kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y!, kid, alg: 'ES256', use: 'sig' }),
  });
}

/**
 * Reads the ES256 keys of a PEM file: one private key (PKCS#8 or SEC1), or several one after
 * another, so that a key can be added, promoted and retired by editing one file (SIGHUP re-reads
 * it). Errors name the file and the key's place in it, never its content.
 */
export function readEcKeys(path: string): SigningKey[] {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new KeyError(`cannot read signing key file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const blocks = pem.match(/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g) ?? [];
  if (blocks.length === 0) throw new KeyError(`signing key file ${path} does not hold a PEM private key`);
  return blocks.map((block, i) => {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: block, format: 'pem' });
    } catch {
      throw new KeyError(`signing key file ${path}: key ${i + 1} is not a valid PEM private key`);
    }
    return ecSigningKey(key);
  });
}

/** The first (signing) key of a key file. */
export function loadEcKeyFile(path: string): SigningKey {
  return readEcKeys(path)[0]!;
}

/** The keys of several key files, in order: the first key of the first file signs. */
export function loadEcKeyFiles(paths: readonly string[]): KeySet {
  const keys = paths.flatMap((path) => readEcKeys(path));
  const seen = new Set<string>();
  for (const key of keys) {
    if (seen.has(key.kid)) throw new KeyError(`signing key ${key.kid} is listed twice`);
    seen.add(key.kid);
  }
  return createKeySet(keys);
}

/** A fresh P-256 key that lives as long as the process: development only. */
export function generateEcKey(): SigningKey {
  return ecSigningKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
}

/** Writes nothing: returns a new P-256 private key as PKCS#8 PEM, for key files. */
export function generateEcPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The kid of the HS256 key: a fixed name that says nothing about the secret. */
export const HS256_KID = 'hs256';

/** An HS256 key. RFC 7518 section 3.2: the secret must be at least as long as the hash (32 bytes). */
export function hmacSigningKey(secret: Buffer): SigningKey {
  if (secret.length < 32) throw new KeyError('an HS256 secret must be at least 32 bytes');
  const key = createSecretKey(Buffer.from(secret));
  // Not derived from the secret: a thumbprint of it would let anyone holding a token (or the
  // start-up log) test guesses at a weak secret offline. One HS256 secret at a time, one kid.
  const kid = HS256_KID;
  return Object.freeze({ alg: 'HS256' as const, kid, signKey: key, verifyKey: key, publicJwk: undefined });
}

/** A key set: the first key signs, all verify. Every key must use the same algorithm. */
export function createKeySet(keys: readonly SigningKey[]): KeySet {
  const signing = keys[0];
  if (!signing) throw new KeyError('a key set needs at least one key');
  const byKid = new Map<string, SigningKey>();
  for (const key of keys) {
    if (key.alg !== signing.alg) throw new KeyError('every key of a key set must use the same algorithm');
    byKid.set(key.kid, key);
  }
  const jwks = { keys: keys.flatMap((k) => (k.publicJwk ? [k.publicJwk] : [])) };
  return Object.freeze({
    alg: signing.alg,
    signing,
    all: Object.freeze([...keys]),
    byKid: (kid: string) => byKid.get(kid),
    jwksJson: JSON.stringify(jwks),
  });
}

const TAG_KEY_INFO = 'auth.v1 refresh-token tag';

/**
 * The keys that tag refresh tokens, derived from the signing keys with HKDF-SHA256 (RFC 5869) so
 * that every instance with the same key files agrees and no further secret needs configuring.
 * A key that signs no token directly: the label keeps its use apart from the JWT signatures.
 */
export function refreshTagKeys(keys: Pick<KeySet, 'all' | 'signing'>): { signing: Buffer; all: Buffer[] } {
  const derive = (key: SigningKey): Buffer => {
    const material = key.alg === 'HS256' ? key.signKey.export() : Buffer.from(String((key.signKey.export({ format: 'jwk' }) as { d?: string }).d), 'base64url');
    return Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), TAG_KEY_INFO, 32));
  };
  const all = keys.all.map(derive);
  return { signing: all[keys.all.indexOf(keys.signing)]!, all };
}

/**
 * The service's keys, replaceable while it runs (SIGHUP re-reads the key files): everything that
 * signs or verifies holds the ring and reads the current set on each use. The algorithm cannot
 * change without a restart.
 */
export class KeyRing implements KeySet {
  private current: KeySet;
  private tags: { signing: Buffer; all: Buffer[] } | undefined;

  constructor(keys: KeySet) {
    this.current = keys;
  }

  get alg(): JwtAlgorithm {
    return this.current.alg;
  }
  get signing(): SigningKey {
    return this.current.signing;
  }
  get all(): readonly SigningKey[] {
    return this.current.all;
  }
  get jwksJson(): string {
    return this.current.jwksJson;
  }
  byKid(kid: string): SigningKey | undefined {
    return this.current.byKid(kid);
  }

  /** The refresh-token tag keys of the current set (derived once per set). */
  get tagKeys(): { signing: Buffer; all: Buffer[] } {
    return (this.tags ??= refreshTagKeys(this.current));
  }

  /** Puts `next` in place of the current keys; throws KeyError (and changes nothing) if its algorithm differs. */
  replace(next: KeySet): void {
    if (next.alg !== this.current.alg) throw new KeyError(`the new keys are ${next.alg}, the running ones ${this.current.alg}: changing the algorithm needs a restart`);
    this.current = next;
    this.tags = undefined;
  }
}
