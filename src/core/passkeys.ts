import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Clock } from '../clock.js';
import { AuthError } from '../errors.js';
import type { Random } from '../random.js';
import type { AccountStore } from './accounts.js';
import { AMR_PASSKEY } from './amr.js';
import { canonicalUsername } from './credentials.js';
import type { FlowContext } from './events.js';
import { isId, newId } from './ids.js';
import { selfOf } from './mfa.js';
import { addressKey, type LoginThrottle } from './login-throttle.js';
import type { UserRecord } from './records.js';
import type { RateStore } from './register.js';
import { changeSecrets, parseSecrets, pruned, type SecretsDecision, type StoredPasskey, type UserSecrets, type UserSecretStore } from './user-secrets.js';

/** The port: ceremonies waiting for their answer, and which user each credential id belongs to. */
export interface PasskeyStore {
  /** Keeps a ceremony (opaque JSON) for `ttlMs`, under an id nobody else has. */
  putCeremony(id: string, ceremony: string, ttlMs: number): Promise<void>;
  /** The ceremony, deleted in the same step (single use); undefined when unknown, used or expired. */
  takeCeremony(id: string): Promise<string | undefined>;
  /** Records that the credential belongs to the user: 'taken' when it belongs to another one (kept as is). */
  linkPasskey(credentialId: string, userId: string): Promise<'linked' | 'taken'>;
  /** The user a credential id belongs to. */
  passkeyOwner(credentialId: string): Promise<string | undefined>;
  /** Forgets the link, if it is still the user's. */
  unlinkPasskey(credentialId: string, userId: string): Promise<void>;
}

export interface PasskeyOptions {
  /** AUTH_WEBAUTHN_RP_ID; undefined turns passkeys off (FAILED_PRECONDITION). */
  readonly rpId: string | undefined;
  readonly rpName: string;
  /** AUTH_WEBAUTHN_ORIGINS: the exact origins a ceremony may come from. */
  readonly origins: readonly string[];
  readonly ceremonyTtlMs: number;
  readonly maxPerUser: number;
  /** StartPasskeyLogin calls one client address may make in a minute. */
  readonly startsPerMinute: number;
}

export const PASSKEY_DEFAULTS = { ceremonyTtlMs: 5 * 60_000, maxPerUser: 10, startsPerMinute: 30 } as const;

export interface PasskeyDeps {
  readonly store: PasskeyStore;
  readonly secrets: UserSecretStore;
  readonly users: Pick<AccountStore, 'getUser' | 'findUserByUsername' | 'updateUser' | 'listSessions'>;
  readonly rates: RateStore;
  readonly throttle: LoginThrottle;
  readonly random: Random;
  readonly clock: Clock;
  /** Spends a current TOTP code for a change that needs one (SecondFactors.spendForChange). */
  readonly spendCode: (code: string, refusal: string, ctx: FlowContext) => Promise<'spent' | 'none'>;
}

/** A passkey as the RPCs show it. */
export type PasskeyView = Omit<StoredPasskey, 'publicKey' | 'counter'>;

interface Ceremony {
  readonly kind: 'register' | 'login';
  readonly challenge: string;
  /** The user it was started for (a registration, or a sign-in that named one). */
  readonly userId?: string | undefined;
  /** A registration's session: another session of the same user cannot finish it. */
  readonly sessionId?: string | undefined;
  readonly expiresAt: number;
}

/** The public-key algorithms accepted: ES256, EdDSA, RS256 (what authenticators make). */
const ALGORITHMS = [-7, -8, -257];
const RESPONSE_JSON_MAX = 16 * 1024;
const NAME_MAX = 64;
const CEREMONY = /^pkc_[A-Za-z0-9_-]{22}$/;
const CREDENTIAL_ID = /^[A-Za-z0-9_-]{16,1364}$/;
const NO_CEREMONY = 'no such ceremony, or it was used or has expired; start again';
const NOT_ON = 'passkeys are not enabled on this server (AUTH_WEBAUTHN_RP_ID)';
const NO_PASSKEY = 'passkey not found';

/** Why simplewebauthn refused a response, from its message: the audit's `why` and the caller's text. */
// Anchored at the start: the rest of a message may quote what the client sent (its challenge).
const REFUSALS: ReadonlyArray<readonly [RegExp, string, string]> = [
  [/^Unexpected (authentication|registration) response origin /, 'origin', 'the response comes from an origin this server does not accept'],
  [/^Unexpected RP ID hash/, 'rp_id', 'the response is for another relying party (RP ID)'],
  [/^User verification (was )?required/, 'user_verification', 'the authenticator did not verify the user (UV); passkeys here need it'],
  [/^User (presence was required|not present)/, 'user_presence', 'the authenticator did not see the user (UP)'],
  [/^Response counter value /, 'counter', 'the authenticator counter went backwards: this passkey may be cloned'],
  [/^Unexpected (authentication|registration) response challenge /, 'challenge', 'the response answers another challenge'],
];
/** The transports WebAuthn Level 3 names; anything else a browser reports is dropped. */
const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);
/** StartPasskeyRegistration calls one user may make a minute (each keeps a ceremony for 5 minutes). */
const REGISTRATIONS_PER_MINUTE = 10;

/**
 * Passkeys (WebAuthn, with @simplewebauthn/server): registration by a signed-in user, sign-in by
 * a passkey alone (a user-verified passkey is multi-factor: amr ["pop", "mfa"]), listing,
 * renaming and removal. The relying party's id and origins come from settings only. Each user has
 * one random user handle, made at their first registration and never rewritten; their passkeys
 * live in their secrets document (compare-and-set), and the store keeps which user each
 * credential id belongs to (a credential belongs to one user) and the ceremonies: random
 * challenges, single use, bound to their user (and a registration's session), gone in minutes.
 */
export class Passkeys {
  constructor(
    private readonly deps: PasskeyDeps,
    private readonly options: PasskeyOptions,
  ) {}

  private now(): number {
    return this.deps.clock.now();
  }

  private rp(): { rpID: string; origins: string[] } {
    if (!this.options.rpId) throw new AuthError('failed_precondition', NOT_ON);
    return { rpID: this.options.rpId, origins: [...this.options.origins] };
  }

  private change<T>(userId: string, decide: (doc: UserSecrets) => SecretsDecision<T>): Promise<T> {
    return changeSecrets(this.deps.secrets, userId, () => this.now(), decide);
  }

  private async read(userId: string): Promise<UserSecrets> {
    return pruned(parseSecrets(await this.deps.secrets.readUserSecrets(userId)), this.now());
  }

  private async newCeremony(ceremony: Omit<Ceremony, 'expiresAt' | 'challenge'>, challenge: string): Promise<string> {
    const id = newId(this.deps.random, 'pkc');
    const body: Ceremony = { ...ceremony, challenge, expiresAt: this.now() + this.options.ceremonyTtlMs };
    await this.deps.store.putCeremony(id, JSON.stringify(body), this.options.ceremonyTtlMs);
    return id;
  }

  private async takeCeremony(id: string, kind: Ceremony['kind']): Promise<Ceremony | undefined> {
    if (!CEREMONY.test(id)) return undefined;
    const raw = await this.deps.store.takeCeremony(id);
    const ceremony = raw === undefined ? undefined : (JSON.parse(raw) as Ceremony);
    return ceremony && ceremony.kind === kind && ceremony.expiresAt > this.now() ? ceremony : undefined;
  }

  /** A random challenge of 32 bytes, base64url (the injected randomness, not simplewebauthn's). */
  private challenge(): string {
    return this.deps.random.bytes(32).toString('base64url');
  }

  /**
   * Adding a passkey to an account that has a factor already (TOTP or a passkey) needs a session
   * that began with one (amr "otp" or "pop"): a password-only token cannot add its own key.
   */
  private checkFactorSession(doc: UserSecrets, ctx: FlowContext): void {
    const has = doc.totp !== undefined || (doc.webauthn?.passkeys.length ?? 0) > 0;
    const amr = ctx.principal?.amr ?? [];
    if (has && !amr.includes('otp') && !amr.includes('pop')) {
      throw new AuthError('insufficient_authentication', 'this account has a second factor: sign in with it to add a passkey', { reason: 'MFA_REQUIRED' });
    }
  }

  /** StartPasskeyRegistration: creation options for the caller (resident key and user verification required, their passkeys excluded). */
  async startRegistration(ctx: FlowContext): Promise<{ ceremonyId: string; optionsJson: string }> {
    const { userId, sessionId } = selfOf(ctx);
    const { rpID } = this.rp();
    const user = await this.deps.users.getUser(userId);
    if (!user) throw new AuthError('not_found', 'user not found');
    const doc = await this.read(userId);
    this.checkFactorSession(doc, ctx);
    if ((doc.webauthn?.passkeys.length ?? 0) >= this.options.maxPerUser) {
      throw new AuthError('failed_precondition', `an account holds at most ${this.options.maxPerUser} passkeys; delete one first`);
    }
    const hit = await this.deps.rates.hitRate(`pkr:${userId}`, REGISTRATIONS_PER_MINUTE, 60_000);
    if (!hit.allowed) throw throttled(hit.retryAfterMs, 'passkey registrations started');
    // The user handle: made once, on the first registration, and kept for good.
    const fresh = this.deps.random.bytes(32).toString('base64url');
    const handle = await this.change(userId, (d) => (d.webauthn ? { keep: true, result: d.webauthn.handle } : { write: { ...d, webauthn: { handle: fresh, passkeys: [] } }, result: fresh }));
    const options = await generateRegistrationOptions({
      rpName: this.options.rpName,
      rpID,
      userName: user.username,
      userDisplayName: user.username,
      userID: Buffer.from(handle, 'base64url'),
      challenge: Buffer.from(this.challenge(), 'base64url'),
      timeout: this.options.ceremonyTtlMs,
      attestationType: 'none',
      excludeCredentials: (doc.webauthn?.passkeys ?? []).map((p) => ({ id: p.id, transports: p.transports as AuthenticatorTransportFuture[] })),
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      supportedAlgorithmIDs: ALGORITHMS,
    });
    const ceremonyId = await this.newCeremony({ kind: 'register', userId, sessionId }, options.challenge);
    return { ceremonyId, optionsJson: JSON.stringify(options) };
  }

  /**
   * FinishPasskeyRegistration: verifies the browser's RegistrationResponseJSON against the
   * ceremony and keeps the passkey. Every other session of the user ends (each began without it);
   * the calling one goes on.
   */
  async finishRegistration(input: { ceremonyId: string; responseJson: string; name: string }, ctx: FlowContext): Promise<PasskeyView> {
    const { userId, sessionId } = selfOf(ctx);
    const { rpID, origins } = this.rp();
    const name = checkName(input.name, 'Passkey');
    const response = parseResponse<RegistrationResponseJSON>(input.responseJson);
    const attempt = await this.deps.throttle.begin(`passkey\u0000${userId}\u0000${sessionId}`, ctx);
    try {
      const ceremony = await this.takeCeremony(input.ceremonyId, 'register');
      if (!ceremony || ceremony.userId !== userId || ceremony.sessionId !== sessionId) throw new AuthError('not_found', NO_CEREMONY);
      let verified;
      try {
        verified = await verifyRegistrationResponse({ response, expectedChallenge: ceremony.challenge, expectedOrigin: origins, expectedRPID: rpID, requireUserVerification: true, supportedAlgorithmIDs: ALGORITHMS });
      } catch (err) {
        return await refuse(attempt, err, ctx, 'registration', userId);
      }
      if (!verified.verified) return await refuse(attempt, new Error('signature'), ctx, 'registration', userId);
      await attempt.succeeded();
      const info = verified.registrationInfo;
      if (!CREDENTIAL_ID.test(info.credential.id)) throw new AuthError('invalid_argument', 'the credential id is over 1,023 bytes (WebAuthn Level 3)');
      const passkey: StoredPasskey = {
        id: info.credential.id,
        publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
        counter: info.credential.counter,
        transports: [...new Set<string>(info.credential.transports ?? response.response.transports ?? [])].filter((t) => TRANSPORTS.has(t)),
        backupEligible: info.credentialDeviceType === 'multiDevice',
        backedUp: info.credentialBackedUp,
        aaguid: info.aaguid,
        name,
        createdAt: this.now(),
      };
      // Registered already here (an authenticator that ignored excludeCredentials): nothing to link or undo.
      if ((await this.read(userId)).webauthn?.passkeys.some((p) => p.id === passkey.id)) throw new AuthError('already_exists', 'this passkey is registered already');
      if ((await this.deps.store.linkPasskey(passkey.id, userId)) === 'taken') throw new AuthError('already_exists', 'this passkey is registered already');
      try {
        await this.change(userId, (doc) => {
          this.checkFactorSession(doc, ctx);
          const held = doc.webauthn?.passkeys ?? [];
          if (held.some((p) => p.id === passkey.id)) throw new AuthError('already_exists', 'this passkey is registered already');
          if (held.length >= this.options.maxPerUser) throw new AuthError('failed_precondition', `an account holds at most ${this.options.maxPerUser} passkeys; delete one first`);
          if (!doc.webauthn) throw new AuthError('not_found', NO_CEREMONY);
          return { write: { ...doc, webauthn: { handle: doc.webauthn.handle, passkeys: [...held, passkey] } }, result: undefined };
        });
      } catch (err) {
        // Undone unless the same passkey went in meanwhile (a concurrent Finish): its link stays.
        if (!(await this.read(userId)).webauthn?.passkeys.some((p) => p.id === passkey.id)) await this.deps.store.unlinkPasskey(passkey.id, userId);
        throw err;
      }
      const others = (await this.deps.users.listSessions(userId)).filter((s) => s.id !== sessionId).length;
      await this.deps.users.updateUser(userId, { revokeSessions: true, keepSession: sessionId });
      ctx.log.warn({ event: 'passkey_added', userId, actorId: userId, sessionId, passkeyId: passkey.id, sessionsEnded: others }, 'passkey added; other sessions ended');
      return view(passkey);
    } finally {
      await attempt.release().catch(() => {});
    }
  }

  /** StartPasskeyLogin: request options; with a username, that user's passkeys are allowed, without one any discoverable credential. */
  async startLogin(rawUsername: string, ctx: FlowContext): Promise<{ ceremonyId: string; optionsJson: string }> {
    const { rpID } = this.rp();
    if (rawUsername.length > 256) throw new AuthError('invalid_argument', 'username must be at most 256 characters');
    // Per address as the login throttle counts it: an IPv6 host holds a whole /64.
    const hit = await this.deps.rates.hitRate(`pkl:${addressKey(ctx.clientAddress ?? '-')}`, this.options.startsPerMinute, 60_000);
    if (!hit.allowed) {
      ctx.log.warn({ event: 'passkey_login_throttled' }, 'passkey sign-ins started too often from one address');
      throw throttled(hit.retryAfterMs, 'passkey sign-ins started');
    }
    let user: UserRecord | undefined;
    if (rawUsername !== '') {
      const username = canonicalUsername(rawUsername);
      user = username === undefined ? undefined : await this.deps.users.findUserByUsername(username);
    }
    const held = user ? ((await this.read(user.id)).webauthn?.passkeys ?? []) : [];
    const options = await generateAuthenticationOptions({
      rpID,
      challenge: Buffer.from(this.challenge(), 'base64url'),
      timeout: this.options.ceremonyTtlMs,
      userVerification: 'required',
      allowCredentials: held.map((p) => ({ id: p.id, transports: p.transports as AuthenticatorTransportFuture[] })),
    });
    const ceremonyId = await this.newCeremony({ kind: 'login', userId: user?.id }, options.challenge);
    return { ceremonyId, optionsJson: JSON.stringify(options) };
  }

  /**
   * FinishPasskeyLogin: verifies the assertion (origin, RP ID, user verification, signature,
   * counter) and starts a session with amr ["pop", "mfa"]. Failures count like failed logins,
   * under the credential id and the client address.
   */
  async finishLogin<T>(input: { ceremonyId: string; responseJson: string }, ctx: FlowContext, start: (user: UserRecord, amr: readonly string[]) => Promise<T>): Promise<T> {
    const { rpID, origins } = this.rp();
    const response = parseResponse<AuthenticationResponseJSON>(input.responseJson);
    if (typeof response.id !== 'string' || !CREDENTIAL_ID.test(response.id)) throw new AuthError('invalid_argument', 'response_json has no valid credential id');
    // Failures count per credential and client address together (and per address alone): nobody
    // can guess a signature, and counting under the credential id only (which StartPasskeyLogin
    // shows) would let anyone lock its owner out from elsewhere; under the address only, the
    // sign-ins in flight of every user behind one proxy would share one budget.
    const attempt = await this.deps.throttle.begin(`passkey\u0000${response.id}\u0000${addressKey(ctx.clientAddress ?? '-')}`, ctx);
    try {
      const ceremony = await this.takeCeremony(input.ceremonyId, 'login');
      if (!ceremony) return await refuse(attempt, new Error('ceremony'), ctx, 'login');
      const owner = await this.deps.store.passkeyOwner(response.id);
      if (!owner || (ceremony.userId !== undefined && ceremony.userId !== owner)) return await refuse(attempt, new Error('unknown'), ctx, 'login');
      const doc = await this.read(owner);
      const passkey = doc.webauthn?.passkeys.find((p) => p.id === response.id);
      if (!passkey) {
        // A link left behind by a removal that stopped half-way: the document says it is gone.
        await this.deps.store.unlinkPasskey(response.id, owner);
        return await refuse(attempt, new Error('unknown'), ctx, 'login');
      }
      const handle = response.response.userHandle;
      if (handle !== undefined && handle !== doc.webauthn!.handle) return await refuse(attempt, new Error('user_handle'), ctx, 'login', owner);
      let verified;
      try {
        verified = await verifyAuthenticationResponse({
          response,
          expectedChallenge: ceremony.challenge,
          expectedOrigin: origins,
          expectedRPID: rpID,
          requireUserVerification: true,
          credential: { id: passkey.id, publicKey: Buffer.from(passkey.publicKey, 'base64url'), counter: passkey.counter, transports: passkey.transports as AuthenticatorTransportFuture[] },
        });
      } catch (err) {
        return await refuse(attempt, err, ctx, 'login', owner);
      }
      if (!verified.verified) return await refuse(attempt, new Error('signature'), ctx, 'login', owner);
      await attempt.succeeded();
      const { newCounter, credentialBackedUp } = verified.authenticationInfo;
      await this.change(owner, (d) => {
        const list = d.webauthn?.passkeys ?? [];
        if (!list.some((p) => p.id === passkey.id)) throw new AuthError('invalid_credentials', 'passkey not recognised');
        const passkeys = list.map((p) => (p.id === passkey.id ? { ...p, counter: Math.max(p.counter, newCounter), backedUp: credentialBackedUp, lastUsedAt: this.now() } : p));
        return { write: { ...d, webauthn: { handle: d.webauthn!.handle, passkeys } }, result: undefined };
      });
      const user = await this.deps.users.getUser(owner);
      if (!user) throw new AuthError('invalid_credentials', 'passkey not recognised');
      if (user.disabled) {
        ctx.log.info({ event: 'login_refused_disabled', userId: owner }, 'login refused: account disabled');
        throw new AuthError('account_disabled', 'account disabled');
      }
      const started = await start(user, AMR_PASSKEY);
      ctx.log.info({ event: 'passkey_login_succeeded', userId: owner, passkeyId: passkey.id }, 'signed in with a passkey');
      return started;
    } finally {
      await attempt.release().catch(() => {});
    }
  }

  /** The caller's passkeys (ListPasskeys), or a user's (AdminService.ListUserPasskeys). */
  async list(userId: string): Promise<PasskeyView[]> {
    if (!isId(userId, 'usr') || !(await this.deps.users.getUser(userId))) throw new AuthError('not_found', 'user not found');
    return ((await this.read(userId)).webauthn?.passkeys ?? []).map(view);
  }

  async listOwn(ctx: FlowContext): Promise<PasskeyView[]> {
    return this.list(selfOf(ctx).userId);
  }

  /** RenamePasskey: the caller's own passkey. */
  async rename(passkeyId: string, rawName: string, ctx: FlowContext): Promise<PasskeyView> {
    const { userId, sessionId } = selfOf(ctx);
    const name = checkName(rawName);
    const renamed = await this.change(userId, (doc) => {
      const list = doc.webauthn?.passkeys ?? [];
      const found = list.find((p) => p.id === passkeyId);
      if (!found) throw new AuthError('not_found', NO_PASSKEY);
      const next = { ...found, name };
      return { write: { ...doc, webauthn: { handle: doc.webauthn!.handle, passkeys: list.map((p) => (p.id === passkeyId ? next : p)) } }, result: next };
    });
    ctx.log.info({ event: 'passkey_renamed', userId, actorId: userId, sessionId, passkeyId }, 'passkey renamed');
    return view(renamed);
  }

  /**
   * DeletePasskey: with a TOTP factor on, a current `code` of it is needed (spent); without one,
   * a session that began with a passkey. A password-only token cannot remove a factor.
   */
  async delete(passkeyId: string, code: string, ctx: FlowContext): Promise<void> {
    const { userId, sessionId } = selfOf(ctx);
    const doc = await this.read(userId);
    if (!doc.webauthn?.passkeys.some((p) => p.id === passkeyId)) throw new AuthError('not_found', NO_PASSKEY);
    const spent = await this.deps.spendCode(code, 'passkey not deleted', ctx);
    if (spent === 'none' && !(ctx.principal?.amr ?? []).includes('pop')) {
      throw new AuthError('insufficient_authentication', 'sign in with a passkey (or send a code of your TOTP factor) to delete one', { reason: 'MFA_REQUIRED' });
    }
    await this.remove(userId, passkeyId);
    ctx.log.warn({ event: 'passkey_deleted', userId, actorId: userId, sessionId, passkeyId }, 'passkey deleted');
  }

  /** AdminService.DeleteUserPasskey. */
  async adminDelete(userId: string, passkeyId: string, ctx: FlowContext): Promise<void> {
    if (!isId(userId, 'usr') || !(await this.deps.users.getUser(userId))) throw new AuthError('not_found', 'user not found');
    await this.remove(userId, passkeyId);
    ctx.log.warn({ event: 'passkey_deleted', userId, actorId: ctx.principal?.userId, passkeyId }, 'passkey deleted by an admin');
  }

  private async remove(userId: string, passkeyId: string): Promise<void> {
    await this.change(userId, (doc) => {
      const list = doc.webauthn?.passkeys ?? [];
      if (!list.some((p) => p.id === passkeyId)) throw new AuthError('not_found', NO_PASSKEY);
      return { write: { ...doc, webauthn: { handle: doc.webauthn!.handle, passkeys: list.filter((p) => p.id !== passkeyId) } }, result: undefined };
    });
    await this.deps.store.unlinkPasskey(passkeyId, userId);
  }
}

const GRAPHEMES = new Intl.Segmenter('en', { granularity: 'grapheme' });

/** A passkey's name: at most 64 characters as people count them (and 128 code points), no controls, format characters or line separators. */
function checkName(raw: string, fallback?: string): string {
  const name = raw.trim().normalize('NFC');
  if (name === '' && fallback !== undefined) return fallback;
  if (name === '') throw new AuthError('invalid_argument', 'name is required');
  const long = [...GRAPHEMES.segment(name)].length > NAME_MAX || [...name].length > 2 * NAME_MAX;
  if (long || /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(name)) throw new AuthError('invalid_argument', `name must be at most ${NAME_MAX} printable characters`);
  return name;
}

function throttled(retryAfterMs: number, what: string): AuthError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new AuthError('throttled', `too many ${what}; retry in ${seconds} s`, { retryAfterSeconds: seconds });
}

function parseResponse<T>(json: string): T {
  if (json.length === 0) throw new AuthError('invalid_argument', 'response_json is required');
  if (json.length > RESPONSE_JSON_MAX) throw new AuthError('invalid_argument', `response_json must be at most ${RESPONSE_JSON_MAX} characters`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new AuthError('invalid_argument', 'response_json is not JSON');
  }
  const r = parsed as { id?: unknown; type?: unknown; response?: unknown };
  if (typeof parsed !== 'object' || parsed === null || typeof r.id !== 'string' || r.type !== 'public-key' || typeof r.response !== 'object' || r.response === null) {
    throw new AuthError('invalid_argument', 'response_json is not a WebAuthn credential response (PublicKeyCredential.toJSON())');
  }
  return parsed as T;
}

/** A refused ceremony: counted as a failed login, audited with why, one clear answer. */
async function refuse(attempt: { failed(): Promise<void> }, err: unknown, ctx: FlowContext, ceremony: 'login' | 'registration', userId?: string): Promise<never> {
  await attempt.failed();
  const text = err instanceof Error ? err.message : String(err);
  const [why, message] = whyRefused(text);
  const fields = { why, ...(userId ? { userId } : {}) };
  if (ceremony === 'login') ctx.log.warn({ event: 'passkey_login_refused', ...fields }, 'passkey sign-in refused');
  else ctx.log.warn({ event: 'passkey_registration_refused', ...fields }, 'passkey registration refused');
  if (why === 'ceremony') throw new AuthError('not_found', NO_CEREMONY);
  throw new AuthError('invalid_credentials', `passkey refused: ${message}`);
}

function whyRefused(text: string): [string, string] {
  if (text === 'ceremony') return ['ceremony', NO_CEREMONY];
  if (text === 'unknown') return ['unknown_credential', 'this passkey is not registered here'];
  if (text === 'user_handle') return ['user_handle', 'the passkey belongs to another user handle'];
  if (text === 'signature') return ['signature', 'the signature does not verify'];
  for (const [pattern, why, message] of REFUSALS) if (pattern.test(text)) return [why, message];
  return ['malformed', 'the response could not be verified'];
}

function view(p: StoredPasskey): PasskeyView {
  const { publicKey: _, counter: __, ...shown } = p;
  return shown;
}
