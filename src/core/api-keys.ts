import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';
import { AuthError } from '../errors.js';
import type { Random } from '../random.js';
import type { AccessTokenIssuer } from './access-token.js';
import type { FlowContext } from './events.js';
import { idFromBytes, isId } from './ids.js';
import { addressKey, type LoginThrottle } from './login-throttle.js';
import type { LiveUser } from './records.js';

/** An API key as stored: never its secret, only an HMAC of it. */
export interface ApiKeyRecord {
  /** "apk_" and 22 base64url characters: the id part of the secret. */
  readonly id: string;
  /** A user ("usr_…") or a service account ("sva_…"). */
  readonly ownerId: string;
  readonly name: string;
  /** The roles its tokens may carry (those the owner still holds when a token is made and used). */
  readonly roles: readonly string[];
  /** HMAC-SHA-256 of the whole secret under the server's API-key secret, base64url. */
  readonly hash: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  /**
   * The owner's generation when the key was made (0 for a service account): whatever ends all of
   * a user's sessions (a new password, disabling, revoke-all, a new second factor) ends the key.
   */
  readonly ownerGeneration: number;
  /** The last exchange, to the minute (written at most once a minute). */
  readonly lastUsedAt?: number | undefined;
}

/** The port: API keys by id and by owner. */
export interface ApiKeyStore {
  /** Keeps a key unless its owner holds `maxPerOwner` live ones already ('limit') or is gone ('owner_gone'). */
  createApiKey(key: ApiKeyRecord, maxPerOwner: number): Promise<'created' | 'limit' | 'owner_gone'>;
  getApiKey(id: string): Promise<ApiKeyRecord | undefined>;
  /** The owner's keys that have not expired, oldest first. */
  listApiKeys(ownerId: string): Promise<ApiKeyRecord[]>;
  /** Deletes the owner's key; false when there was none. */
  revokeApiKey(ownerId: string, id: string): Promise<boolean>;
  /** Records a use (`lastUsedAt`). */
  touchApiKey(id: string, at: number): Promise<void>;
  /**
   * The owner behind a live key: the key exists and has not expired, and its owner exists, is
   * enabled and (a user) is at the generation they were when the key was made (`ownerGeneration`):
   * nothing has ended all their sessions since.
   */
  liveApiKey(ownerId: string, id: string): Promise<LiveUser | undefined>;
}

export interface ApiKeyOptions {
  /** AUTH_API_KEY_SECRET: the HMAC key every instance shares; undefined turns API keys off. */
  readonly secret: Buffer | undefined;
  /** AUTH_API_KEY_MAX_TTL. */
  readonly maxTtlMs: number;
  /** AUTH_API_KEYS_PER_OWNER. */
  readonly maxPerOwner: number;
  /** AUTH_MFA_REQUIRED_ROLES: roles an API key can never carry (it has no second factor). */
  readonly mfaRoles: readonly string[];
}

export interface ApiKeyDeps {
  readonly store: ApiKeyStore;
  readonly owners: { getOwner(ownerId: string): Promise<{ readonly roles: readonly string[]; readonly username: string; readonly generation?: number } | undefined> };
  readonly throttle: LoginThrottle;
  readonly accessTokens: AccessTokenIssuer;
  readonly random: Random;
  readonly clock: Clock;
}

export type ApiKeyView = Omit<ApiKeyRecord, 'hash'>;

/**
 * A token exchanged for an API key acts for its owner but never manages the owner's account: no
 * new API keys (a leaked key could outlive its own revocation), no factors, passwords or sessions.
 */
export function refuseApiKeyToken(ctx: FlowContext, what = 'manage the account'): void {
  if (ctx.principal?.sessionId.startsWith('apk_')) throw new AuthError('permission_denied', `a token from an API key cannot ${what}: sign in`);
}

const SECRET = /^gak_([A-Za-z0-9_-]{22})_([A-Za-z0-9_-]{43})$/;
const NAME_MAX = 64;
const INVALID_KEY = 'the API key is invalid, expired or revoked';
const ROLE = /^[a-z0-9_.-]{1,64}$/;

/**
 * API keys: a user (or an admin for a service account) makes a key with some of its roles and an
 * expiry; a script exchanges it for a short access token (no refresh token). The secret is
 * "gak_<id>_<256 random bits>", shown once; the store keeps an HMAC of it under a server secret,
 * found by its id and compared in constant time. A key stops working at once when revoked, when
 * its owner is disabled or deleted, or (a user) changes their password; its tokens carry the
 * key's roles that the owner still holds, never a second factor (amr is empty).
 */
export class ApiKeys {
  constructor(
    private readonly deps: ApiKeyDeps,
    private readonly options: ApiKeyOptions,
  ) {}

  /** The HMAC key; FAILED_PRECONDITION when API keys are off. */
  private key(): Buffer {
    if (!this.options.secret) throw new AuthError('failed_precondition', 'API keys are not enabled on this server (AUTH_API_KEY_SECRET)');
    return this.options.secret;
  }

  private hash(secret: string): string {
    return createHmac('sha256', this.key()).update(secret).digest('base64url');
  }

  /** CreateApiKey (the caller's own) and AdminService.CreateServiceAccountApiKey: the owner is never taken from the request. */
  async create(ownerId: string, input: { name: string; roles: readonly string[]; expiresInSeconds: number }, ctx: FlowContext): Promise<{ key: ApiKeyView; secret: string }> {
    this.key();
    const name = input.name.trim();
    if (name === '' || [...name].length > NAME_MAX || /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(name)) throw new AuthError('invalid_argument', `name is required: at most ${NAME_MAX} printable characters`);
    if (!Number.isSafeInteger(input.expiresInSeconds) || input.expiresInSeconds <= 0) throw new AuthError('invalid_argument', 'expires_in_seconds is required');
    if (input.expiresInSeconds * 1000 > this.options.maxTtlMs) throw new AuthError('invalid_argument', `expires_in_seconds must be at most ${this.options.maxTtlMs / 1000} (AUTH_API_KEY_MAX_TTL)`);
    const roles = [...new Set(input.roles)];
    if (roles.length > 32 || !roles.every((r) => ROLE.test(r))) throw new AuthError('invalid_argument', 'roles must be role names');
    const owner = await this.deps.owners.getOwner(ownerId);
    if (!owner) throw new AuthError('not_found', 'owner not found');
    const missing = roles.filter((r) => !owner.roles.includes(r));
    if (missing.length > 0) throw new AuthError('permission_denied', `an API key can carry only roles its owner holds (not: ${missing.join(', ')})`);
    const stepUp = roles.filter((r) => this.options.mfaRoles.includes(r));
    if (stepUp.length > 0) throw new AuthError('permission_denied', `an API key has no second factor, so it cannot carry ${stepUp.join(', ')} (AUTH_MFA_REQUIRED_ROLES)`);
    const idPart = this.deps.random.bytes(16);
    const id = idFromBytes('apk', idPart);
    const secret = `gak_${idPart.toString('base64url')}_${this.deps.random.bytes(32).toString('base64url')}`;
    const now = this.deps.clock.now();
    const record: ApiKeyRecord = { id, ownerId, name, roles, hash: this.hash(secret), createdAt: now, expiresAt: now + input.expiresInSeconds * 1000, ownerGeneration: owner.generation ?? 0 };
    const created = await this.deps.store.createApiKey(record, this.options.maxPerOwner);
    if (created === 'owner_gone') throw new AuthError('not_found', 'owner not found');
    if (created === 'limit') throw new AuthError('failed_precondition', `an owner holds at most ${this.options.maxPerOwner} API keys (AUTH_API_KEYS_PER_OWNER); revoke one first`);
    ctx.log.warn({ event: 'api_key_created', ownerId, actorId: ctx.principal?.userId, apiKeyId: id, roles, expiresAt: new Date(record.expiresAt).toISOString() }, 'API key created');
    return { key: view(record), secret };
  }

  async list(ownerId: string): Promise<ApiKeyView[]> {
    return (await this.deps.store.listApiKeys(ownerId)).map(view);
  }

  async revoke(ownerId: string, id: string, ctx: FlowContext): Promise<void> {
    if (!isId(id, 'apk') || !(await this.deps.store.revokeApiKey(ownerId, id))) throw new AuthError('not_found', 'API key not found');
    ctx.log.warn({ event: 'api_key_revoked', ownerId, actorId: ctx.principal?.userId, apiKeyId: id }, 'API key revoked');
  }

  /** AdminService.RevokeApiKey: any key, by its id. */
  async adminRevoke(id: string, ctx: FlowContext): Promise<void> {
    const key = isId(id, 'apk') ? await this.deps.store.getApiKey(id) : undefined;
    if (!key) throw new AuthError('not_found', 'API key not found');
    await this.revoke(key.ownerId, id, ctx);
  }

  /**
   * ExchangeApiKey: a short access token for a live key. Failures count against the key's id and
   * the client address, with the back-off of failed logins; one answer for every failure.
   */
  async exchange(secret: string, ctx: FlowContext): Promise<{ accessToken: string; expiresIn: number }> {
    this.key();
    if (secret.length > 128) throw new AuthError('invalid_credentials', INVALID_KEY);
    const m = SECRET.exec(secret);
    const id = m ? idFromBytes('apk', Buffer.from(m[1]!, 'base64url')) : undefined;
    // Failures count per key and client address together: knowing a key's id (its tokens name it)
    // from elsewhere cannot lock its holder out; the address counts on its own as well.
    const attempt = await this.deps.throttle.begin(`apikey\u0000${id ?? '-'}\u0000${addressKey(ctx.clientAddress ?? '-')}`, ctx);
    try {
      const key = id !== undefined ? await this.deps.store.getApiKey(id) : undefined;
      const presented = Buffer.from(this.hash(secret));
      const matches = key !== undefined && presented.length === Buffer.byteLength(key.hash) && timingSafeEqual(presented, Buffer.from(key.hash));
      const live = matches ? await this.deps.store.liveApiKey(key.ownerId, key.id) : undefined;
      if (!key || !live) {
        await attempt.failed();
        ctx.log.info({ event: 'api_key_exchange_failed', ...(key && matches ? { apiKeyId: key.id, ownerId: key.ownerId } : {}) }, 'API key refused');
        throw new AuthError('invalid_credentials', INVALID_KEY);
      }
      await attempt.succeeded();
      const now = this.deps.clock.now();
      // Coarse: at most one write a minute per key.
      if (key.lastUsedAt === undefined || now - key.lastUsedAt >= 60_000) await this.deps.store.touchApiKey(key.id, now);
      const access = this.deps.accessTokens.issue(
        {
          userId: key.ownerId,
          username: live.username,
          roles: key.roles.filter((r) => live.roles.includes(r) && !this.options.mfaRoles.includes(r)),
          sessionId: key.id,
          apiKeyId: key.id,
          amr: [],
          // The key's making is the sign-in a max_age policy weighs, not this exchange.
          authTime: key.createdAt,
        },
        key.expiresAt,
      );
      ctx.log.info({ event: 'api_key_exchanged', apiKeyId: key.id, ownerId: key.ownerId }, 'API key exchanged');
      return { accessToken: access.token, expiresIn: access.expiresIn };
    } finally {
      await attempt.release().catch(() => {});
    }
  }
}

function view(r: ApiKeyRecord): ApiKeyView {
  const { hash: _, ...shown } = r;
  return shown;
}
