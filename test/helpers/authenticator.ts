import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

/**
 * A software WebAuthn authenticator for tests: P-256 keys, "none" attestation, resident keys, and
 * switches to make it misbehave (no user verification, another origin or RP id, a counter that
 * goes back, a signature over other data). Written from the WebAuthn Level 3 byte layouts, not
 * from the library the service uses, so the two check each other.
 */

/** The smallest CBOR encoder the attestation object needs: maps, text, bytes, integers. */
export function cbor(value: unknown): Buffer {
  const head = (major: number, n: number): Buffer => {
    if (n < 24) return Buffer.from([(major << 5) | n]);
    if (n < 256) return Buffer.from([(major << 5) | 24, n]);
    if (n < 65536) return Buffer.from([(major << 5) | 25, n >> 8, n & 255]);
    const b = Buffer.alloc(5);
    b[0] = (major << 5) | 26;
    b.writeUInt32BE(n, 1);
    return b;
  };
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') return Buffer.concat([head(3, Buffer.byteLength(value)), Buffer.from(value)]);
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value]);
  if (value instanceof Map) return Buffer.concat([head(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
  throw new Error(`cbor: cannot encode ${typeof value}`);
}

const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest();

export interface Credential {
  readonly id: Buffer;
  readonly key: KeyObject;
  readonly rpId: string;
  readonly userHandle: string;
  counter: number;
}

export interface Misbehaviour {
  /** The origin clientDataJSON names (default: the authenticator's). */
  origin?: string;
  /** The RP id whose hash authenticatorData carries (default: the options'). */
  rpId?: string;
  /** User verified (UV flag); default true. */
  uv?: boolean;
  /** Sign over other data than the WebAuthn spec says. */
  badSignature?: boolean;
  /** The counter to report instead of the next one. */
  counter?: number;
  /** Answer another challenge. */
  challenge?: string;
  /** The user handle to send (default: the credential's). */
  userHandle?: string;
  /** At registration: this credential id instead of a new one (another authenticator's). */
  credentialId?: Buffer;
  /** At registration: the transports the browser reports. */
  transports?: unknown[];
}

interface CreationOptions {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string };
  excludeCredentials?: Array<{ id: string }>;
  authenticatorSelection?: { residentKey?: string; userVerification?: string };
}

interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: Array<{ id: string }>;
  userVerification?: string;
}

export class SoftAuthenticator {
  readonly credentials: Credential[] = [];
  /** Synced passkeys report counter 0 and the BE/BS flags; device-bound ones count up. */
  constructor(
    readonly origin: string,
    private readonly synced = false,
  ) {}

  private flags(m: Misbehaviour, extra = 0): number {
    return 0x01 | (m.uv === false ? 0 : 0x04) | (this.synced ? 0x18 : 0) | extra;
  }

  private clientData(type: string, challenge: string, m: Misbehaviour): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge: m.challenge ?? challenge, origin: m.origin ?? this.origin, crossOrigin: false }));
  }

  /** navigator.credentials.create(): a RegistrationResponseJSON. */
  create(optionsJson: string, m: Misbehaviour = {}): { json: string; credential: Credential } {
    const o = JSON.parse(optionsJson) as CreationOptions;
    const excluded = new Set((o.excludeCredentials ?? []).map((c) => c.id));
    if (this.credentials.some((c) => excluded.has(b64u(c.id)))) throw new Error('InvalidStateError: already registered');
    const rpId = o.rp.id!;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = cbor(new Map<number, unknown>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]));
    const id = m.credentialId ?? randomBytes(16);
    const counter = this.synced ? 0 : 1;
    const length = Buffer.alloc(2);
    length.writeUInt16BE(id.length);
    const count = Buffer.alloc(4);
    count.writeUInt32BE(m.counter ?? counter);
    const authData = Buffer.concat([sha256(m.rpId ?? rpId), Buffer.from([this.flags(m, 0x40)]), count, Buffer.alloc(16), length, id, cose]);
    const attestation = cbor(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
    const credential: Credential = { id, key: privateKey, rpId, userHandle: o.user.id, counter };
    this.credentials.push(credential);
    const json = JSON.stringify({
      id: b64u(id),
      rawId: b64u(id),
      type: 'public-key',
      response: { clientDataJSON: b64u(this.clientData('webauthn.create', o.challenge, m)), attestationObject: b64u(attestation), transports: m.transports ?? ['internal'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    });
    return { json, credential };
  }

  /** navigator.credentials.get(): an AuthenticationResponseJSON from the first credential allowed (any, when none is listed). */
  get(optionsJson: string, m: Misbehaviour = {}, pick?: Credential): string {
    const o = JSON.parse(optionsJson) as RequestOptions;
    const allowed = new Set((o.allowCredentials ?? []).map((c) => c.id));
    const credential = pick ?? this.credentials.find((c) => c.rpId === o.rpId && (allowed.size === 0 || allowed.has(b64u(c.id))));
    if (!credential) throw new Error('NotAllowedError: no credential for this RP');
    if (!this.synced) credential.counter++;
    const count = Buffer.alloc(4);
    count.writeUInt32BE(m.counter ?? (this.synced ? 0 : credential.counter));
    const authData = Buffer.concat([sha256(m.rpId ?? o.rpId!), Buffer.from([this.flags(m)]), count]);
    const clientData = this.clientData('webauthn.get', o.challenge, m);
    const signed = Buffer.concat([authData, sha256(m.badSignature ? Buffer.from('other data') : clientData)]);
    const signature = sign('sha256', signed, credential.key);
    return JSON.stringify({
      id: b64u(credential.id),
      rawId: b64u(credential.id),
      type: 'public-key',
      response: { clientDataJSON: b64u(clientData), authenticatorData: b64u(authData), signature: b64u(signature), userHandle: m.userHandle ?? credential.userHandle },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    });
  }
}
