import { createPublicKey, timingSafeEqual, type JsonWebKey } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { AuthError } from '../errors.js';
import type { Random } from '../random.js';
import type { AccessTokenIssuer } from './access-token.js';
import { ADMIN_ROLE, LAST_ADMIN, lastAdminKept } from './accounts.js';
import { validateRoles } from './credentials.js';
import type { FlowContext } from './events.js';
import { isId, newId } from './ids.js';
import { hasDuplicateTopLevelKeys } from './json-keys.js';
import { sha256 } from './sha256.js';
import { jwkThumbprint } from './keys.js';
import type { LoginThrottle } from './login-throttle.js';
import type { LiveUser } from './records.js';

/** One way a service account authenticates. Secrets are kept as their SHA-256 only. */
export type Credential =
  | { readonly type: 'secret'; readonly id: string; readonly createdAt: number; readonly hash: string }
  /**
   * `kid` is the one the JWK declared (what a client's JOSE library puts in its assertions), or
   * the RFC 7638 thumbprint when it declared none; assertions may name either. Keys stored before
   * declared kids were kept have no `thumbprint`: their kid is it.
   */
  | { readonly type: 'key'; readonly id: string; readonly createdAt: number; readonly kid: string; readonly thumbprint?: string; readonly jwk: string }
  | { readonly type: 'certificate'; readonly id: string; readonly createdAt: number; readonly thumbprint: string };

/** A credential before the store stamps its time. */
export type NewCredential = Credential extends infer C ? (C extends Credential ? Omit<C, 'createdAt'> : never) : never;

export interface ServiceAccountRecord {
  /** "sva_…": the `sub` and the `client_id` of its tokens. */
  readonly id: string;
  readonly name: string;
  readonly roles: readonly string[];
  readonly disabled: boolean;
  readonly createdAt: number;
  /** Bumped by every change. */
  readonly revision: number;
  readonly credentials: readonly Credential[];
}

export interface ServiceAccountChange {
  readonly roles?: readonly string[];
  readonly disabled?: boolean;
  readonly addCredential?: NewCredential;
  /** Removes the credential of this id and type. */
  readonly removeCredential?: { readonly id: string; readonly type: Credential['type'] };
  /** As UserChange's: refuse a change that would leave no enabled admin. */
  readonly keepAnAdmin?: boolean;
}

export type ServiceAccountUpdate =
  | { readonly outcome: 'updated'; readonly account: ServiceAccountRecord }
  | { readonly outcome: 'not_found' | 'no_such_credential' | 'too_many_credentials' | 'credential_exists' | 'kid_taken' | 'last_admin' };

/** The service accounts port. A service account's data live together, like a user's. */
export interface ServiceAccountStore {
  /** Adds the account (with its first credential) unless the name is taken; atomic. */
  createServiceAccount(account: { id: string; name: string; roles: readonly string[]; credential: NewCredential }): Promise<'created' | 'exists'>;
  getServiceAccount(id: string): Promise<ServiceAccountRecord | undefined>;
  listServiceAccounts(query: { prefix: string; after: string | undefined; limit: number }): Promise<ServiceAccountRecord[]>;
  updateServiceAccount(id: string, change: ServiceAccountChange): Promise<ServiceAccountUpdate>;
  deleteServiceAccount(id: string, options?: { readonly keepAnAdmin?: boolean }): Promise<boolean | 'last_admin'>;
  /**
   * Records an assertion's jti until `expiresAt` (ms); false when it was recorded before: a
   * replay, refused on every instance that shares the store.
   */
  useAssertion(serviceAccountId: string, jti: string, expiresAt: number): Promise<boolean>;
}

/** At most this many credentials an account (secrets, keys and certificates together). */
export const MAX_CREDENTIALS = 10;
/** RFC 7523 section 3: an assertion's exp at most this far ahead. */
export const MAX_ASSERTION_LIFETIME_MS = 5 * 60_000;
export const SECRET_PREFIX = 'svs_';
const SECRET = /^svs_[A-Za-z0-9_-]{43}$/;
const NAME = /^[a-z0-9][a-z0-9._-]{2,63}$/;
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
/** A kid a JWK may declare: 1 to 128 printable ASCII characters. */
const KID = /^[\x21-\x7e]{1,128}$/;
const INVALID_CLIENT = 'client authentication failed';
const NO_ACCOUNT = 'service account not found';

/** The store key of a secret: its SHA-256 (256 random bits make a plain hash as strong as an HMAC). */
export function hashSecret(secret: string): string {
  return sha256(secret, 'base64url');
}

/** The live subject of a service account credential, as the introspector wants it. */
export function liveAccount(account: ServiceAccountRecord, credentialId: string): LiveUser | undefined {
  if (account.disabled || !account.credentials.some((c) => c.id === credentialId)) return undefined;
  return { id: account.id, username: account.name, roles: account.roles, revision: account.revision };
}

export interface ServiceAccountDeps {
  readonly accounts: ServiceAccountStore;
  readonly random: Random;
}

/** The administration of service accounts (AdminService; the admin role is declared in the proto). */
export class ServiceAccountAdmin {
  constructor(private readonly deps: ServiceAccountDeps) {}

  async create(name: string, roles: readonly string[], ctx: FlowContext): Promise<{ account: ServiceAccountRecord; secret: string; secretId: string }> {
    if (!NAME.test(name)) throw new AuthError('invalid_argument', 'name must be 3 to 64 of lower-case letters, digits and . _ -');
    const valid = validateRoles(roles);
    const id = newId(this.deps.random, 'sva');
    const { secret, credential } = this.newSecret();
    if ((await this.deps.accounts.createServiceAccount({ id, name, roles: valid, credential })) === 'exists') {
      throw new AuthError('already_exists', 'a service account of that name exists');
    }
    ctx.log.info({ event: 'service_account_created', serviceAccountId: id, actorId: actorOf(ctx) }, 'service account created');
    return { account: await this.get(id), secret, secretId: credential.id };
  }

  async get(id: string): Promise<ServiceAccountRecord> {
    const account = isId(id, 'sva') ? await this.deps.accounts.getServiceAccount(id) : undefined;
    if (!account) throw new AuthError('not_found', NO_ACCOUNT);
    return account;
  }

  list(query: { prefix: string; after: string | undefined; limit: number }): Promise<ServiceAccountRecord[]> {
    return this.deps.accounts.listServiceAccounts(query);
  }

  async setRoles(id: string, roles: readonly string[], ctx: FlowContext): Promise<ServiceAccountRecord> {
    const valid = validateRoles(roles);
    if (id === actorOf(ctx) && !valid.includes(ADMIN_ROLE)) throw new AuthError('failed_precondition', 'an admin cannot take the admin role from themselves');
    const account = await this.update(id, { roles: valid, keepAnAdmin: true }, ctx);
    ctx.log.info({ event: 'service_account_changed', serviceAccountId: id, actorId: actorOf(ctx), change: 'roles', roles: valid }, 'service account roles changed');
    return account;
  }

  async setDisabled(id: string, disabled: boolean, ctx: FlowContext): Promise<ServiceAccountRecord> {
    if (disabled && id === actorOf(ctx)) throw new AuthError('failed_precondition', 'an admin cannot disable themselves');
    const account = await this.update(id, { disabled, keepAnAdmin: true }, ctx);
    ctx.log.warn({ event: 'service_account_changed', serviceAccountId: id, actorId: actorOf(ctx), change: disabled ? 'disabled' : 'enabled' }, `service account ${disabled ? 'disabled' : 'enabled'}`);
    return account;
  }

  async delete(id: string, ctx: FlowContext): Promise<void> {
    if (id === actorOf(ctx)) throw new AuthError('failed_precondition', 'an admin cannot delete themselves');
    const deleted = isId(id, 'sva') ? await this.deps.accounts.deleteServiceAccount(id, { keepAnAdmin: true }) : false;
    if (deleted === 'last_admin') throw lastAdminKept(ctx, { serviceAccountId: id }, 'deleted');
    if (!deleted) throw new AuthError('not_found', NO_ACCOUNT);
    ctx.log.warn({ event: 'service_account_deleted', serviceAccountId: id, actorId: actorOf(ctx) }, 'service account deleted');
  }

  async addSecret(id: string, ctx: FlowContext): Promise<{ secret: string; secretId: string }> {
    const { secret, credential } = this.newSecret();
    await this.update(id, { addCredential: credential });
    this.credentialEvent(ctx, id, credential.id, 'added', 'secret');
    return { secret, secretId: credential.id };
  }

  /** Adds a public key; assertions may name it by the kid it declares or by its thumbprint. */
  async addKey(id: string, jwkJson: string, ctx: FlowContext): Promise<{ keyId: string; kid: string; thumbprint: string }> {
    const { jwk, kid, thumbprint } = parsePublicJwk(jwkJson);
    const keyId = newId(this.deps.random, 'key');
    await this.update(id, { addCredential: { type: 'key', id: keyId, kid, thumbprint, jwk } });
    this.credentialEvent(ctx, id, keyId, 'added', 'key');
    return { keyId, kid, thumbprint };
  }

  async bindCertificate(id: string, thumbprint: string, ctx: FlowContext): Promise<{ bindingId: string }> {
    if (!THUMBPRINT.test(thumbprint)) throw new AuthError('invalid_argument', 'thumbprint must be base64url SHA-256 of the DER certificate (43 characters)');
    const bindingId = newId(this.deps.random, 'crt');
    await this.update(id, { addCredential: { type: 'certificate', id: bindingId, thumbprint } });
    this.credentialEvent(ctx, id, bindingId, 'added', 'certificate');
    return { bindingId };
  }

  /** Removes a credential; the tokens it issued turn inactive at once. */
  async removeCredential(id: string, credentialId: string, type: Credential['type'], ctx: FlowContext): Promise<void> {
    await this.update(id, { removeCredential: { id: credentialId, type } });
    this.credentialEvent(ctx, id, credentialId, 'removed', type);
  }

  private newSecret(): { secret: string; credential: NewCredential } {
    const secret = SECRET_PREFIX + this.deps.random.bytes(32).toString('base64url');
    return { secret, credential: { type: 'secret', id: newId(this.deps.random, 'sec'), hash: hashSecret(secret) } };
  }

  private credentialEvent(ctx: FlowContext, id: string, credentialId: string, change: 'added' | 'removed', type: string): void {
    ctx.log.warn({ event: 'service_account_credential', serviceAccountId: id, credentialId, type, change, actorId: actorOf(ctx) }, `service account ${type} ${change}`);
  }

  /** Applies `change`; `ctx` is given with the changes the last-admin rule is asked for. */
  private async update(id: string, change: ServiceAccountChange, ctx?: FlowContext): Promise<ServiceAccountRecord> {
    const result = isId(id, 'sva') ? await this.deps.accounts.updateServiceAccount(id, change) : { outcome: 'not_found' as const };
    switch (result.outcome) {
      case 'updated':
        return result.account;
      case 'not_found':
        throw new AuthError('not_found', NO_ACCOUNT);
      case 'no_such_credential':
        throw new AuthError('not_found', `${change.removeCredential?.type ?? 'credential'} not found`);
      case 'credential_exists':
        throw new AuthError('already_exists', 'that credential is already registered');
      case 'last_admin':
        throw ctx ? lastAdminKept(ctx, { serviceAccountId: id }, change.roles ? 'roles' : 'disabled') : new AuthError('failed_precondition', LAST_ADMIN);
      case 'kid_taken':
        throw new AuthError('invalid_argument', 'another key of this service account has that kid; give the JWK a kid of its own');
      case 'too_many_credentials':
        throw new AuthError('failed_precondition', `a service account holds at most ${MAX_CREDENTIALS} credentials; remove one first`);
    }
  }
}

function actorOf(ctx: FlowContext): string | undefined {
  return ctx.principal?.userId;
}

/**
 * An ES256 public JWK, checked: P-256, no private part; returns it in canonical form, its
 * thumbprint, and its kid (the one it declares, else the thumbprint).
 */
function parsePublicJwk(json: string): { jwk: string; kid: string; thumbprint: string } {
  let parsed: unknown;
  try {
    parsed = json.length <= 4096 ? JSON.parse(json) : undefined;
  } catch {
    parsed = undefined;
  }
  const k = parsed as Record<string, unknown> | undefined;
  if (typeof k !== 'object' || k === null || Array.isArray(k)) throw new AuthError('invalid_argument', 'public_key_jwk must be a JWK as JSON text');
  if ('d' in k) throw new AuthError('invalid_argument', 'public_key_jwk holds a private key ("d"); send the public key only');
  if (k.kty !== 'EC' || k.crv !== 'P-256' || typeof k.x !== 'string' || typeof k.y !== 'string') throw new AuthError('invalid_argument', 'public_key_jwk must be an EC P-256 key (ES256)');
  if (k.kid !== undefined && (typeof k.kid !== 'string' || !KID.test(k.kid))) throw new AuthError('invalid_argument', 'public_key_jwk\'s kid must be 1 to 128 printable ASCII characters');
  const canonical = { kty: 'EC', crv: 'P-256', x: k.x, y: k.y };
  try {
    createPublicKey({ key: canonical, format: 'jwk' });
  } catch {
    throw new AuthError('invalid_argument', 'public_key_jwk is not a valid P-256 point');
  }
  const thumbprint = jwkThumbprint(canonical);
  return { jwk: JSON.stringify(canonical), kid: typeof k.kid === 'string' ? k.kid : thumbprint, thumbprint };
}

/**
 * What is wrong with a service account record read from outside (`grpc-auth import`), by the
 * rules CreateServiceAccount and the credential RPCs apply; undefined when nothing is.
 */
export function importedAccountProblem(account: Pick<ServiceAccountRecord, 'id' | 'name' | 'roles' | 'credentials'>): string | undefined {
  if (!isId(account.id, 'sva')) return 'id is not a service account id (sva_ and 16 bytes)';
  if (!NAME.test(account.name)) return 'name must be 3 to 64 of lower-case letters, digits and . _ -';
  try {
    validateRoles(account.roles);
  } catch (err) {
    return (err as Error).message;
  }
  if (account.credentials.length > MAX_CREDENTIALS) return `an account holds at most ${MAX_CREDENTIALS} credentials`;
  for (const c of account.credentials) {
    const bad = credentialProblem(c);
    if (bad) return `credential ${JSON.stringify(String(c.id).slice(0, 40))}: ${bad}`;
  }
  if (new Set(account.credentials.map((c) => c.id)).size !== account.credentials.length) return 'a credential id is listed twice';
  return undefined;
}

function credentialProblem(c: Credential): string | undefined {
  switch (c.type) {
    case 'secret':
      return !isId(c.id, 'sec') ? 'not a secret id' : typeof c.hash !== 'string' || !THUMBPRINT.test(c.hash) ? 'the hash is not a SHA-256 (43 base64url characters)' : undefined;
    case 'certificate':
      return !isId(c.id, 'crt') ? 'not a certificate binding id' : typeof c.thumbprint !== 'string' || !THUMBPRINT.test(c.thumbprint) ? 'the thumbprint is not a SHA-256 (43 base64url characters)' : undefined;
    case 'key': {
      if (!isId(c.id, 'key')) return 'not a key id';
      try {
        const parsed = parsePublicJwk(c.jwk);
        if (typeof c.kid !== 'string' || !KID.test(c.kid)) return 'the kid must be 1 to 128 printable ASCII characters';
        if (c.thumbprint !== undefined && c.thumbprint !== parsed.thumbprint) return "the thumbprint is not the key's";
        return undefined;
      } catch (err) {
        return (err as Error).message.replace('public_key_jwk', 'the jwk');
      }
    }
    default:
      return 'unknown type';
  }
}

export interface ServiceTokenOptions {
  /** This server's issuer: the audience assertions must name. */
  readonly issuer: string;
  readonly clockSkewMs: number;
}

export interface ServiceTokenDeps {
  readonly accounts: Pick<ServiceAccountStore, 'getServiceAccount' | 'useAssertion'>;
  readonly throttle: LoginThrottle;
  readonly accessTokens: AccessTokenIssuer;
  readonly clock: { now(): number };
}

export interface ServiceTokenRequest {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly clientAssertion: string;
}

/** What the transport knows of the caller: the TLS client certificate's thumbprint, over mTLS. */
export interface ServiceTokenContext extends FlowContext {
  readonly certificateThumbprint?: string | undefined;
}

/**
 * IssueServiceToken: client credentials for backends, three ways (Hydra's client_secret_post,
 * private_key_jwt of RFC 7523, and tls_client_auth of RFC 8705). Failures are throttled per
 * (client id, address, method) and per address, and all look alike to the caller.
 */
export class ServiceTokenFlow {
  constructor(
    private readonly deps: ServiceTokenDeps,
    private readonly options: ServiceTokenOptions,
  ) {}

  async issue(req: ServiceTokenRequest, ctx: ServiceTokenContext): Promise<{ accessToken: string; expiresIn: number }> {
    if (req.clientSecret !== '' && req.clientAssertion !== '') throw new AuthError('invalid_argument', 'give client_secret or client_assertion, not both');
    if (req.clientSecret.length > 256 || req.clientAssertion.length > 8192 || req.clientId.length > 64) throw new AuthError('invalid_argument', 'a field is too long');
    const method = req.clientSecret !== '' ? 'secret' : req.clientAssertion !== '' ? 'key' : 'certificate';
    const clientId = req.clientId !== '' ? req.clientId : method === 'key' ? assertionIssuer(req.clientAssertion) : '';
    if (clientId === '') throw new AuthError('invalid_argument', 'client_id is required');
    // Failures count per (client id, address, method) and per address: a client id is no secret,
    // so a count on it alone would let anyone lock a backend out; and a backend authenticating
    // by key or certificate is never held back by guesses at secrets.
    const attempt = await this.deps.throttle.begin(`client:${method}:${clientId}`, ctx, 'name-and-address');
    try {
      const account = isId(clientId, 'sva') ? await this.deps.accounts.getServiceAccount(clientId) : undefined;
      const credential = account && (await this.authenticate(account, method, req, ctx));
      if (!account || !credential) {
        await attempt.failed();
        ctx.log.info({ event: 'client_auth_failed', method, ...(account ? { serviceAccountId: account.id } : {}) }, 'client authentication failed');
        throw new AuthError('invalid_client', INVALID_CLIENT);
      }
      await attempt.succeeded();
      if (account.disabled) throw new AuthError('account_disabled', 'service account disabled');
      const thumbprint = credential.type === 'certificate' ? credential.thumbprint : undefined;
      const access = this.deps.accessTokens.issue({
        userId: account.id,
        username: account.name,
        roles: account.roles,
        sessionId: credential.id,
        clientId: account.id,
        ...(thumbprint ? { certificateThumbprint: thumbprint } : {}),
      });
      ctx.log.info({ event: 'service_token_issued', serviceAccountId: account.id, credentialId: credential.id, method }, 'service token issued');
      return { accessToken: access.token, expiresIn: access.expiresIn };
    } finally {
      await attempt.release().catch(() => {});
    }
  }

  private async authenticate(account: ServiceAccountRecord, method: 'secret' | 'key' | 'certificate', req: ServiceTokenRequest, ctx: ServiceTokenContext): Promise<Credential | undefined> {
    switch (method) {
      case 'secret': {
        if (!SECRET.test(req.clientSecret)) return undefined;
        const presented = Buffer.from(hashSecret(req.clientSecret));
        // Every secret of the account is compared, each in constant time.
        let match: Credential | undefined;
        for (const c of account.credentials) if (c.type === 'secret' && timingSafeEqual(Buffer.from(c.hash), presented)) match = c;
        return match;
      }
      case 'certificate':
        return ctx.certificateThumbprint === undefined ? undefined : account.credentials.find((c) => c.type === 'certificate' && c.thumbprint === ctx.certificateThumbprint);
      case 'key':
        return this.verifyAssertion(account, req.clientAssertion);
    }
  }

  /** RFC 7523 section 3: signed by one of the account's keys, iss = sub = client id, aud = us, short-lived, used once. */
  private async verifyAssertion(account: ServiceAccountRecord, assertion: string): Promise<Credential | undefined> {
    const parts = assertion.split('.');
    if (parts.length !== 3) return undefined;
    let header: Record<string, unknown>;
    try {
      const headerJson = Buffer.from(parts[0]!, 'base64url').toString('utf8');
      const payloadJson = Buffer.from(parts[1]!, 'base64url').toString('utf8');
      header = JSON.parse(headerJson) as Record<string, unknown>;
      const payload = JSON.parse(payloadJson) as Record<string, unknown>;
      if (typeof header !== 'object' || header === null || typeof payload !== 'object' || payload === null) return undefined;
      if (hasDuplicateTopLevelKeys(headerJson, header) || hasDuplicateTopLevelKeys(payloadJson, payload)) return undefined;
    } catch {
      return undefined;
    }
    if (header.alg !== 'ES256' || ['crit', 'jku', 'x5u', 'jwk', 'x5c'].some((h) => h in header)) return undefined;
    // A kid names a key by the kid its JWK declared or by its thumbprint; no kid: try every key.
    const keys = account.credentials.filter((c): c is Extract<Credential, { type: 'key' }> => c.type === 'key' && (header.kid === undefined || header.kid === c.kid || header.kid === (c.thumbprint ?? c.kid)));
    const now = this.deps.clock.now();
    for (const key of keys) {
      let claims: jwt.JwtPayload | string;
      try {
        claims = jwt.verify(assertion, createPublicKey({ key: JSON.parse(key.jwk) as JsonWebKey, format: 'jwk' }), {
          algorithms: ['ES256'],
          audience: this.options.issuer,
          issuer: account.id,
          subject: account.id,
          clockTimestamp: Math.floor(now / 1000),
          clockTolerance: Math.floor(this.options.clockSkewMs / 1000),
        });
      } catch {
        continue;
      }
      if (typeof claims !== 'object' || typeof claims.exp !== 'number' || typeof claims.jti !== 'string' || claims.jti.length === 0 || claims.jti.length > 256) return undefined;
      if (claims.exp * 1000 > now + MAX_ASSERTION_LIFETIME_MS + this.options.clockSkewMs) return undefined;
      if (typeof claims.iat === 'number' && claims.iat * 1000 > now + this.options.clockSkewMs) return undefined;
      // The jti is kept (hashed, fixed size) until the assertion expires: a replay fails everywhere.
      const fresh = await this.deps.accounts.useAssertion(account.id, sha256(claims.jti, 'base64url').slice(0, 22), claims.exp * 1000 + this.options.clockSkewMs);
      return fresh ? key : undefined;
    }
    return undefined;
  }
}

/** The iss of an assertion, read without verifying (it only says which account's keys to try). */
function assertionIssuer(assertion: string): string {
  try {
    const payload = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown };
    return typeof payload.iss === 'string' && payload.iss.length <= 64 ? payload.iss : '';
  } catch {
    return '';
  }
}
