import type { Clock } from '../clock.js';
import { AuthError } from '../errors.js';
import type { Random } from '../random.js';
import type { AccountStore } from './accounts.js';
import { canonicalUsername, checkLoginFields } from './credentials.js';
import type { FlowContext } from './events.js';
import { isId } from './ids.js';
import type { LoginThrottle, ThrottleAttempt } from './login-throttle.js';
import type { PasswordHasher } from './password-hasher.js';
import type { UserRecord } from './records.js';
import { checkNewPassword, type NewPasswordPolicy } from './register.js';
import { multiFactor } from './amr.js';
import { newTotpSecret, otpauthUri, totpStep } from './totp.js';
import {
  changeSecrets,
  digest,
  humanCodeDigest,
  newHumanCode,
  parseSecrets,
  pruned,
  RECOVERY_CODES,
  sameDigest,
  spend,
  type SecretsDecision,
  type Spent,
  type UserSecrets,
  type UserSecretStore,
} from './user-secrets.js';

export interface MfaOptions {
  /** The issuer authenticator apps show beside the username (AUTH_TOTP_ISSUER). */
  readonly totpIssuer: string;
  /** Roles granted only to sessions that began with a second factor (AUTH_MFA_REQUIRED_ROLES). */
  readonly mfaRoles: readonly string[];
  readonly loginTtlMs: number;
  readonly enrollmentTtlMs: number;
  readonly resetCodeTtlMs: number;
}

export const MFA_DEFAULTS = { loginTtlMs: 5 * 60_000, enrollmentTtlMs: 10 * 60_000, resetCodeTtlMs: 15 * 60_000 } as const;

export interface MfaDeps {
  readonly secrets: UserSecretStore;
  readonly users: Pick<AccountStore, 'getUser' | 'findUserByUsername' | 'updateUser' | 'listSessions'>;
  readonly throttle: LoginThrottle;
  readonly hasher: PasswordHasher;
  readonly random: Random;
  readonly clock: Clock;
}

/** What Login does after the password checked out. */
export type LoginGate =
  | { readonly kind: 'challenge'; readonly mfaToken: string; readonly expiresIn: number }
  | { readonly kind: 'session'; readonly enrollmentRequired: boolean };

/** A second factor that checked out at CompleteLogin: the session to start. */
export interface PassedLogin {
  readonly user: Pick<UserRecord, 'id' | 'generation'>;
  readonly usedRecoveryCode: boolean;
  readonly recoveryCodesLeft: number;
}

export interface MfaStatus {
  readonly enabled: boolean;
  readonly recoveryCodesLeft: number;
  readonly enabledAt: number | undefined;
}

export interface Enrollment {
  readonly enrollmentId: string;
  readonly secret: string;
  readonly otpauthUri: string;
  readonly expiresAt: number;
}

const INVALID_CODE = 'the code is not valid';
const CODE_REQUIRED = 'a current code of the second factor is required (from its app, or a recovery code)';
const INVALID_MFA_TOKEN = 'mfa_token is invalid, used or expired; log in again';
const INVALID_RESET = 'the username, reset code or second factor is not valid, or the code was used or has expired';
const NO_ENROLLMENT = 'no such enrollment, or it has expired; enroll again';
const NO_FACTOR = 'no second factor is on';
const MFA_TOKEN = /^mfa_(usr_[A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;
const ENROLLMENT = /^enr_[A-Za-z0-9_-]{22}$/;
const CODE_FIELD_MAX = 64;

/** Throttle names: a second factor's failures at CompleteLogin and ResetPassword count per user (only a password's holder reaches them). */
const mfaName = (userId: string) => `mfa\u0000${userId}`;
/**
 * Failures of the account RPCs that spend a code (ConfirmTotp, DisableTotp, RegenerateRecoveryCodes)
 * count per session: a token's holder guessing there is held back, but cannot throttle the owner's
 * own CompleteLogin, which counts under the user.
 */
const sessionMfaName = (userId: string, sessionId: string) => `mfa\u0000${userId}\u0000${sessionId}`;
const resetName = (username: string) => `reset\u0000${username}`;

/** The calling user of an AccountService RPC (a service account is refused). */
export function selfOf(ctx: FlowContext): { userId: string; sessionId: string } {
  if (!ctx.principal) throw new AuthError('unauthenticated', 'missing bearer token');
  if (ctx.principal.subjectType === 'service_account') throw new AuthError('failed_precondition', 'AccountService is for users; an admin manages service accounts');
  return ctx.principal;
}

function checkCodeField(name: string, code: string, max = CODE_FIELD_MAX): void {
  if (code.length === 0) throw new AuthError('invalid_argument', `${name} is required`);
  checkOptionalCodeField(name, code, max);
}

function checkOptionalCodeField(name: string, code: string, max = CODE_FIELD_MAX): void {
  if (code.length > max) throw new AuthError('invalid_argument', `${name} must be at most ${max} characters`);
}

/** The audit name of the kind of code that was spent. */
function factorName(spent: Spent): 'totp' | 'recovery_code' {
  return spent.recovery ? 'recovery_code' : 'totp';
}

/** Why a change that needs a code of the factor did not happen: a wrong code, none given, or nothing to change. */
type Refusal = 'code' | 'required' | 'none' | 'session';

/**
 * TOTP second factors with recovery codes, the Login gate and CompleteLogin's check, and
 * password reset by one-time code. Knows nothing of gRPC; the store keeps one versioned secrets
 * document per user (see user-secrets.ts), changed only by compare-and-set.
 */
export class SecondFactors {
  constructor(
    private readonly deps: MfaDeps,
    private readonly options: MfaOptions,
  ) {}

  private now(): number {
    return this.deps.clock.now();
  }

  private change<T>(userId: string, decide: Parameters<typeof changeSecrets<T>>[3]): Promise<T> {
    return changeSecrets(this.deps.secrets, userId, () => this.now(), decide);
  }

  /** Whether a user who holds `roles` must enroll before their tokens carry them. */
  mustEnroll(roles: readonly string[]): boolean {
    return roles.some((r) => this.options.mfaRoles.includes(r));
  }

  get mfaRoles(): readonly string[] {
    return this.options.mfaRoles;
  }

  /**
   * After Login's password check: a user with a confirmed factor gets a challenge (an mfa_token
   * bound to this login and to the user's generation now) instead of a session.
   */
  async gate(user: UserRecord, ctx: FlowContext): Promise<LoginGate> {
    const secret = this.deps.random.bytes(32).toString('base64url');
    const expiresAt = this.now() + this.options.loginTtlMs;
    // One read for a user without a factor; with one, that read and the write of the pending login.
    const challenged = await this.change(user.id, (d) =>
      d.totp ? { write: { ...d, logins: [...(d.logins ?? []), { hash: digest(secret), expiresAt, generation: user.generation }] }, result: true } : { keep: true, result: false },
    );
    if (!challenged) return { kind: 'session', enrollmentRequired: this.mustEnroll(user.roles) };
    const mfaToken = `mfa_${user.id}.${secret}`;
    ctx.log.info({ event: 'mfa_challenged', userId: user.id }, 'password checked; second factor required');
    return { kind: 'challenge', mfaToken, expiresIn: Math.floor(this.options.loginTtlMs / 1000) };
  }

  /**
   * CompleteLogin's check: the mfa_token names a pending login, and the code is the user's. A bad
   * mfa_token counts against the caller's address only (anyone can send one); wrong codes count
   * against the user too, reserved before the check, so parallel guesses are throttled like a
   * sequence. Spending the code and the mfa_token is one compare-and-set.
   */
  async completeLogin(mfaToken: string, code: string, ctx: FlowContext): Promise<PassedLogin> {
    checkCodeField('mfa_token', mfaToken, 128);
    checkCodeField('code', code);
    const { throttle, secrets } = this.deps;
    await throttle.checkAddress(ctx);
    const match = MFA_TOKEN.exec(mfaToken);
    const userId = match?.[1];
    const hash = match ? digest(match[2]!) : '';
    const pendingOf = (doc: UserSecrets) => doc.logins?.find((l) => sameDigest(l.hash, hash));
    const badToken = async (): Promise<never> => {
      await throttle.addressFailed(ctx);
      ctx.log.info({ event: 'mfa_failed', why: 'mfa_token', ...(userId ? { userId } : {}) }, 'second factor refused: bad mfa_token');
      throw new AuthError('invalid_credentials', INVALID_MFA_TOKEN);
    };
    if (userId === undefined) return badToken();
    const seen = pendingOf(pruned(parseSecrets(await secrets.readUserSecrets(userId)), this.now()));
    if (!seen) return badToken();
    // Everything that can refuse the session is asked before a code is spent: a password change,
    // sign-out everywhere or deletion since this Login (the generation moved), a disabled account.
    const user = await this.deps.users.getUser(userId);
    if (!user || user.generation !== seen.generation) return badToken();
    if (user.disabled) throw new AuthError('account_disabled', 'account disabled');

    const attempt = await throttle.begin(mfaName(userId), ctx);
    try {
      type Pending = NonNullable<UserSecrets['logins']>[number];
      const result = await this.change<'token' | 'code' | { pending: Pending; spent: Spent }>(userId, (doc) => {
        const pending = pendingOf(doc);
        if (!pending || pending.generation !== user.generation) return { keep: true, result: 'token' };
        const spent = spend(doc, code, this.now());
        if (!spent) return { keep: true, result: 'code' };
        return { write: { ...spent.doc, logins: doc.logins!.filter((l) => l !== pending) }, result: { pending, spent } };
      });
      if (result === 'token') {
        await attempt.release();
        return await badToken();
      }
      if (result === 'code') {
        await attempt.failed();
        ctx.log.warn({ event: 'mfa_failed', why: 'code', userId }, 'second factor refused: wrong or replayed code');
        throw new AuthError('invalid_credentials', INVALID_CODE, { reason: 'MFA_CODE_INVALID' });
      }
      await attempt.succeeded();
      const left = result.spent.doc.recovery?.length ?? 0;
      if (result.spent.recovery) ctx.log.warn({ event: 'recovery_code_used', userId, recoveryCodesLeft: left }, 'recovery code used');
      ctx.log.info({ event: 'mfa_succeeded', userId, factor: result.spent.recovery ? 'recovery_code' : 'totp' }, 'second factor checked');
      return { user: { id: userId, generation: result.pending.generation }, usedRecoveryCode: result.spent.recovery, recoveryCodesLeft: left };
    } finally {
      await attempt.release().catch(() => {});
    }
  }

  async status(ctx: FlowContext): Promise<MfaStatus> {
    const doc = pruned(parseSecrets(await this.deps.secrets.readUserSecrets(selfOf(ctx).userId)), this.now());
    return { enabled: doc.totp !== undefined, recoveryCodesLeft: doc.totp ? (doc.recovery?.length ?? 0) : 0, enabledAt: doc.totp?.confirmedAt };
  }

  /** A new secret, waiting for ConfirmTotp; a factor already on stays until then. */
  async enroll(ctx: FlowContext): Promise<Enrollment> {
    const { userId } = selfOf(ctx);
    const user = await this.deps.users.getUser(userId);
    if (!user) throw new AuthError('not_found', 'user not found');
    const secret = newTotpSecret(this.deps.random);
    const enrollmentId = `enr_${this.deps.random.bytes(16).toString('base64url')}`;
    const expiresAt = this.now() + this.options.enrollmentTtlMs;
    await this.change(userId, (doc) => ({ write: { ...doc, pending: { id: enrollmentId, secret, expiresAt } }, result: undefined }));
    ctx.log.info({ event: 'mfa_enrollment_started', userId }, 'TOTP enrollment started');
    return { enrollmentId, secret, otpauthUri: otpauthUri(secret, this.options.totpIssuer, user.username), expiresAt };
  }

  /**
   * Turns the enrolled factor on and returns the recovery codes, which are never shown again.
   * It needs the password (a token alone cannot put its own factor on an account); replacing a
   * factor that is on needs a code of it too (`currentCode`, spent in the same compare-and-set):
   * a stolen token, even with the password, cannot swap the factor. Every other session of the
   * user ends, since each began without this factor; the calling one goes on.
   */
  async confirm(
    input: { enrollmentId: string; code: string; currentCode: string; password: string },
    checkPassword: (username: string, password: string) => Promise<UserRecord>,
    ctx: FlowContext,
  ): Promise<string[]> {
    const { userId, sessionId } = selfOf(ctx);
    checkCodeField('code', input.code);
    checkOptionalCodeField('current_code', input.currentCode);
    checkLoginFields('-', input.password);
    if (!ENROLLMENT.test(input.enrollmentId)) throw new AuthError('not_found', NO_ENROLLMENT);
    // The password first: confirming ends every other session, so a token alone (one a backend
    // logged, one left on a shared machine) must not be able to put its own factor on the account.
    const user = await this.deps.users.getUser(userId);
    if (!user) throw new AuthError('not_found', 'user not found');
    await checkPassword(user.username, input.password);
    const codes = this.newRecoveryCodes();
    let replaced: Spent | undefined;
    let sessionsEnded = 0;
    const decide = (doc: UserSecrets): SecretsDecision<'ok' | Refusal> => {
      const pending = doc.pending;
      if (!pending || pending.id !== input.enrollmentId) return { keep: true, result: 'none' };
      const step = totpStep(pending.secret, input.code.replace(/\s/g, ''), this.now());
      if (step === undefined) return { keep: true, result: 'code' };
      replaced = undefined;
      // An account with passkeys has a factor already: only a session that began with one adds TOTP.
      if (!doc.totp && (doc.webauthn?.passkeys.length ?? 0) > 0 && !multiFactor(ctx.principal?.amr ?? [])) return { keep: true, result: 'session' };
      if (doc.totp) {
        if (input.currentCode === '') return { keep: true, result: 'required' };
        replaced = spend(doc, input.currentCode, this.now());
        if (!replaced) return { keep: true, result: 'code' };
      }
      // The old factor's pending logins go with it: their mfa_tokens were issued for that factor.
      const { pending: _, logins: __, ...rest } = doc;
      return { write: { ...rest, totp: { secret: pending.secret, confirmedAt: this.now(), lastStep: step }, recovery: codes.hashes }, result: 'ok' };
    };
    const outcome = await this.spendCode(userId, sessionId, ctx, 'TOTP confirmation refused', decide, async () => {
      // Before the factor turns on, and only once the codes checked out: a wrong code ends nothing,
      // and a store failure after this leaves a retry that is safe (the sessions are gone already).
      sessionsEnded = await this.endOtherSessions(userId, sessionId);
    });
    if (outcome === 'none') throw new AuthError('not_found', NO_ENROLLMENT);
    const audit = { userId, actorId: userId, sessionId, sessionsEnded };
    if (replaced) ctx.log.warn({ event: 'mfa_replaced', ...audit, factor: factorName(replaced) }, 'second factor replaced; other sessions ended');
    else ctx.log.warn({ event: 'mfa_enabled', ...audit }, 'second factor turned on; other sessions ended');
    return codes.plain;
  }

  /** Turns the factor off, given the password (checked and throttled like a login by `checkPassword`) and a code of the factor. */
  async disable(input: { password: string; code: string }, checkPassword: (username: string, password: string) => Promise<UserRecord>, ctx: FlowContext): Promise<void> {
    const { userId, sessionId } = selfOf(ctx);
    checkLoginFields('-', input.password);
    checkOptionalCodeField('code', input.code);
    const user = await this.deps.users.getUser(userId);
    if (!user) throw new AuthError('not_found', 'user not found');
    await checkPassword(user.username, input.password);
    let spent: Spent | undefined;
    const outcome = await this.spendCode(userId, sessionId, ctx, 'second factor not turned off', (doc) => {
      if (!doc.totp) return { keep: true, result: 'none' };
      if (input.code === '') return { keep: true, result: 'required' };
      spent = spend(doc, input.code, this.now());
      if (!spent) return { keep: true, result: 'code' };
      // An enrollment waiting goes too: it was started while the factor was on, maybe not by the owner.
      const { totp: _, recovery: __, logins: ___, pending: ____, ...rest } = spent.doc;
      return { write: rest, result: 'ok' };
    });
    if (outcome === 'none') throw new AuthError('failed_precondition', NO_FACTOR);
    ctx.log.warn({ event: 'mfa_disabled', userId, actorId: userId, sessionId, factor: factorName(spent!) }, 'second factor turned off');
  }

  /**
   * Spends a current code of the TOTP factor, under the session's throttle, for a change to the
   * user's factors that needs one (DeletePasskey): 'none' when no TOTP factor is on.
   */
  async spendForChange(code: string, refusal: string, ctx: FlowContext): Promise<'spent' | 'none'> {
    const { userId, sessionId } = selfOf(ctx);
    checkOptionalCodeField('code', code);
    const outcome = await this.spendCode(userId, sessionId, ctx, refusal, (doc) => {
      if (!doc.totp) return { keep: true, result: 'none' };
      if (code === '') return { keep: true, result: 'required' };
      const spent = spend(doc, code, this.now());
      return spent ? { write: spent.doc, result: 'ok' } : { keep: true, result: 'code' };
    });
    return outcome === 'ok' ? 'spent' : 'none';
  }

  /** Ten new recovery codes for a current code of the factor (the app's, or a recovery code); the old ones stop working. */
  async regenerateRecoveryCodes(code: string, ctx: FlowContext): Promise<string[]> {
    const { userId, sessionId } = selfOf(ctx);
    checkCodeField('code', code);
    const codes = this.newRecoveryCodes();
    let spent: Spent | undefined;
    const outcome = await this.spendCode(userId, sessionId, ctx, 'recovery codes not regenerated', (doc) => {
      if (!doc.totp) return { keep: true, result: 'none' };
      spent = spend(doc, code, this.now());
      if (!spent) return { keep: true, result: 'code' };
      return { write: { ...spent.doc, recovery: codes.hashes }, result: 'ok' };
    });
    if (outcome === 'none') throw new AuthError('failed_precondition', NO_FACTOR);
    ctx.log.warn({ event: 'recovery_codes_regenerated', userId, actorId: userId, sessionId, factor: factorName(spent!) }, 'recovery codes replaced');
    return codes.plain;
  }

  /**
   * A change that spends one of the user's codes, under the session's second-factor throttle: the
   * attempt is reserved before the check; 'code' (a wrong one) counts as a failure and is refused
   * with the one answer, 'required' (none given) is refused uncounted, 'ok' counts as a success,
   * 'none' (nothing to check) as neither. `beforeWrite` runs once the document's current state
   * has passed `decide`, before the change is written.
   */
  private async spendCode(
    userId: string,
    sessionId: string,
    ctx: FlowContext,
    refusal: string,
    decide: (doc: UserSecrets) => SecretsDecision<'ok' | Refusal>,
    beforeWrite?: () => Promise<void>,
  ): Promise<'ok' | 'none'> {
    const attempt = await this.deps.throttle.begin(sessionMfaName(userId, sessionId), ctx);
    try {
      let outcome: 'ok' | Refusal = beforeWrite ? decide(pruned(parseSecrets(await this.deps.secrets.readUserSecrets(userId)), this.now())).result : 'ok';
      if (outcome === 'ok') {
        await beforeWrite?.();
        outcome = await this.change(userId, decide);
      }
      if (outcome === 'code') {
        await attempt.failed();
        ctx.log.warn({ event: 'mfa_failed', why: 'code', userId }, `${refusal}: wrong or replayed code`);
        throw new AuthError('invalid_credentials', INVALID_CODE, { reason: 'MFA_CODE_INVALID' });
      }
      if (outcome === 'required') throw new AuthError('invalid_credentials', CODE_REQUIRED, { reason: 'MFA_CODE_REQUIRED' });
      if (outcome === 'session') throw new AuthError('insufficient_authentication', 'this account has passkeys: sign in with one to turn TOTP on', { reason: 'MFA_REQUIRED' });
      if (outcome === 'ok') await attempt.succeeded();
      return outcome;
    } finally {
      await attempt.release().catch(() => {});
    }
  }

  /** Ends every session of the user but `keep`; returns how many were active. */
  private async endOtherSessions(userId: string, keep: string): Promise<number> {
    const others = (await this.deps.users.listSessions(userId)).filter((s) => s.id !== keep).length;
    const ended = await this.deps.users.updateUser(userId, { revokeSessions: true, keepSession: keep });
    if (ended.outcome === 'not_found') throw new AuthError('not_found', 'user not found');
    return others;
  }

  /** An admin's ResetMfa: the factor, its recovery codes and pending logins go, and every session ends. */
  async adminReset(userId: string, ctx: FlowContext): Promise<void> {
    const actorId = ctx.principal?.userId;
    const user = isId(userId, 'usr') ? await this.deps.users.getUser(userId) : undefined;
    if (!user) throw new AuthError('not_found', 'user not found');
    await this.change(userId, (doc) => {
      // Passkeys go too; the user handle stays (a handle is never rewritten).
      const { totp: _, recovery: __, logins: ___, pending: ____, webauthn, ...rest } = doc;
      return { write: { ...rest, ...(webauthn ? { webauthn: { handle: webauthn.handle, passkeys: [] } } : {}) }, result: undefined };
    });
    const sessionsEnded = (await this.deps.users.listSessions(userId)).length;
    const revoked = await this.deps.users.updateUser(userId, { revokeSessions: true });
    if (revoked.outcome === 'not_found') throw new AuthError('not_found', 'user not found');
    ctx.log.warn({ event: 'mfa_reset', userId, actorId, sessionsEnded }, 'second factor removed by an admin; sessions ended');
  }

  /**
   * A one-time password-reset code for the user; only its hash is kept. It replaces the earlier
   * code from the same source only (`'admin'`, or the client address that asked): a request from
   * elsewhere never makes the owner's code, or an admin's, stop working.
   */
  async createResetCode(user: Pick<UserRecord, 'id'>, source: { readonly admin: true } | { readonly address: string | undefined }): Promise<{ code: string; expiresAt: number }> {
    const code = newHumanCode(this.deps.random);
    const expiresAt = this.now() + this.options.resetCodeTtlMs;
    const from = 'admin' in source ? 'admin' : digest(`address:${source.address ?? '-'}`).slice(0, 16);
    await this.change(user.id, (doc) => ({ write: { ...doc, resets: [...(doc.resets ?? []).filter((r) => r.from !== from), { hash: humanCodeDigest(code)!, expiresAt, from }] }, result: undefined }));
    return { code, expiresAt };
  }

  /** An admin's CreatePasswordResetCode. */
  async adminCreateResetCode(userId: string, ctx: FlowContext): Promise<{ code: string; expiresAt: number }> {
    const user = isId(userId, 'usr') ? await this.deps.users.getUser(userId) : undefined;
    if (!user) throw new AuthError('not_found', 'user not found');
    const created = await this.createResetCode(user, { admin: true });
    ctx.log.warn({ event: 'password_reset_code_created', userId, actorId: ctx.principal?.userId, via: 'admin' }, 'password reset code created');
    return created;
  }

  /**
   * ResetPassword: the code (and, with a factor on, a second code) checked before any hashing;
   * one answer for every failure; failures throttled per username and address (a code has 80
   * bits: counting per username alone would only let anyone block a user's reset). The codes are
   * spent by one compare-and-set, so a code works once on every instance; then the new password
   * is set and every session ends.
   */
  async resetPassword(input: { username: string; code: string; newPassword: string; mfaCode: string }, policy: NewPasswordPolicy, ctx: FlowContext): Promise<void> {
    checkLoginFields(input.username, '-');
    checkCodeField('code', input.code);
    if (input.mfaCode.length > CODE_FIELD_MAX) throw new AuthError('invalid_argument', `mfa_code must be at most ${CODE_FIELD_MAX} characters`);
    const username = canonicalUsername(input.username);
    const password = checkNewPassword(input.newPassword, username ?? input.username.normalize('NFKC').toLowerCase(), policy);
    const { throttle, users, hasher } = this.deps;
    const resetAttempt = await throttle.begin(resetName(username ?? input.username), ctx, 'name-and-address');
    let mfaAttempt: ThrottleAttempt | undefined;
    const refuse = async (attempt: ThrottleAttempt, why: string, userId?: string): Promise<never> => {
      await attempt.failed();
      ctx.log.warn({ event: 'password_reset_failed', why, ...(userId ? { userId } : {}) }, 'password reset refused');
      throw new AuthError('invalid_credentials', INVALID_RESET);
    };
    try {
      const hash = humanCodeDigest(input.code);
      const user = username === undefined ? undefined : await users.findUserByUsername(username);
      const codeOk = (doc: UserSecrets) => hash !== undefined && (doc.resets ?? []).some((r) => sameDigest(r.hash, hash));
      if (!user) return await refuse(resetAttempt, 'code');
      const seen = pruned(parseSecrets(await this.deps.secrets.readUserSecrets(user.id)), this.now());
      if (!codeOk(seen)) return await refuse(resetAttempt, 'code', user.id);
      if (seen.totp) {
        if (input.mfaCode === '') return await refuse(resetAttempt, 'second_factor_missing', user.id);
        mfaAttempt = await throttle.begin(mfaName(user.id), ctx);
      }
      // Hashing only once the code checked out: unauthenticated calls cost no hash.
      const passwordHash = await hasher.hash(password);
      const outcome = await this.change(user.id, (doc) => {
        if (!codeOk(doc)) return { keep: true, result: 'code' as const };
        // A reset spends every code the user holds: the others were asked for the same reset.
        const { resets: _, ...rest } = doc;
        if (!doc.totp) return { write: rest, result: 'ok' as const };
        const spent = spend(rest, input.mfaCode, this.now());
        return spent ? { write: spent.doc, result: 'ok' as const } : { keep: true, result: 'mfa' as const };
      });
      if (outcome === 'code') return await refuse(resetAttempt, 'code', user.id);
      if (outcome === 'mfa') return await refuse(mfaAttempt!, 'second_factor', user.id);
      await mfaAttempt?.succeeded();
      await resetAttempt.succeeded();
      const updated = await users.updateUser(user.id, { passwordHash, revokeSessions: true });
      if (updated.outcome !== 'updated') throw new AuthError('conflict', 'the account changed meanwhile; ask for a new code');
      // A user locked out by failed logins is the one who most needs the new password to work.
      await throttle.reset(user.username);
      ctx.log.warn({ event: 'password_reset_by_code', userId: user.id }, 'password reset with a one-time code; sessions ended');
    } finally {
      await mfaAttempt?.release().catch(() => {});
      await resetAttempt.release().catch(() => {});
    }
  }

  private newRecoveryCodes(): { plain: string[]; hashes: string[] } {
    const plain = Array.from({ length: RECOVERY_CODES }, () => newHumanCode(this.deps.random));
    return { plain, hashes: plain.map((c) => humanCodeDigest(c)!) };
  }
}
