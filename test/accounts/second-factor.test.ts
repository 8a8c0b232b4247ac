import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fromBinary } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import jwt from 'jsonwebtoken';
import { Webhook } from 'standardwebhooks';
import { ErrorInfoSchema } from '../../gen/google/rpc/error_details_pb';
import { createAuthClient, MfaRequiredError, stepUpRequired } from '../../src/sdk/client';
import { StatusSchema } from '../../gen/google/rpc/status_pb';
import { pythonCalls, runPython } from '../helpers/python-grpc';
import { describeNeeding } from '../helpers/requires';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { rfc6238 } from '../helpers/rfc6238';
import { eventually } from '../helpers/wait';

const NEW_PASSWORD = 'a brand new password, long enough';
const HOOK_SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

/** The ErrorInfo of a failed call's google.rpc.Status details, if any. */
async function errorInfoOf(call: Promise<unknown>): Promise<{ code: number; reason: string; domain: string; metadata: Record<string, string> }> {
  try {
    await call;
  } catch (err) {
    const e = err as ServiceError;
    const raw = e.metadata.get('grpc-status-details-bin')[0];
    if (!Buffer.isBuffer(raw)) throw new Error(`no details: ${e.details}`);
    const st = fromBinary(StatusSchema, raw);
    expect(st.code).toBe(e.code);
    const info = anyUnpack(st.details[0]!, ErrorInfoSchema)!;
    return { code: e.code, reason: info.reason, domain: info.domain, metadata: { ...info.metadata } };
  }
  throw new Error('expected the call to fail');
}

/** Registers `name`, turns TOTP on through the API; returns the secret and recovery codes. */
async function userWithTotp(server: TestServer, name = 'alice') {
  const { userId } = await server.auth.register({ username: name, password: PASSWORD });
  const first = await server.auth.login({ username: name, password: PASSWORD });
  const auth = bearer(first.accessToken);
  const enrolled = await server.account.enrollTotp({}, auth);
  const { recoveryCodes } = await server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, server.clock.now()) }, auth);
  // The confirming code's step is spent: move to the next step for the first login.
  server.clock.advance(30_000);
  return { userId, secret: enrolled.secret, recoveryCodes, enrolled };
}

async function challenge(server: TestServer, name = 'alice', password = PASSWORD): Promise<string> {
  const login = await server.auth.login({ username: name, password });
  expect(login).toMatchObject({ mfaRequired: true, accessToken: '', refreshToken: '' });
  return login.mfaToken;
}

describe('TOTP second factor over gRPC', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    await server.close();
  });

  test('enroll, confirm, then Login asks for a code and CompleteLogin gives tokens with amr pwd+otp', async () => {
    const { userId } = await server.auth.register({ username: 'alice', password: PASSWORD });
    const first = await server.auth.login({ username: 'alice', password: PASSWORD });
    expect(first).toMatchObject({ mfaRequired: false, mfaEnrollmentRequired: false });
    const auth = bearer(first.accessToken);
    expect((await server.account.getAccount({}, auth)).mfa).toMatchObject({ enabled: false, recoveryCodesLeft: 0 });

    const enrolled = await server.account.enrollTotp({}, auth);
    expect(enrolled.enrollmentId).toMatch(/^enr_/);
    expect(enrolled.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(enrolled.otpauthUri).toBe(`otpauth://totp/grpc-auth:alice?issuer=grpc-auth&secret=${enrolled.secret}&algorithm=SHA1&digits=6&period=30`);
    // Not on until confirmed: Login still gives tokens.
    expect((await server.auth.login({ username: 'alice', password: PASSWORD })).mfaRequired).toBe(false);
    expect(await statusOf(server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: '000000' === rfc6238(enrolled.secret, server.clock.now()) ? '111111' : '000000' }, auth))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'the code is not valid',
    });
    expect(await statusOf(server.account.confirmTotp({ password: PASSWORD, enrollmentId: 'enr_AAAAAAAAAAAAAAAAAAAAAA', code: '123456' }, auth))).toEqual({
      code: status.NOT_FOUND,
      details: 'no such enrollment, or it has expired; enroll again',
    });
    const { recoveryCodes } = await server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, server.clock.now()) }, auth);
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    expect((await server.account.getAccount({}, auth)).mfa).toMatchObject({ enabled: true, recoveryCodesLeft: 10 });

    server.clock.advance(30_000);
    const mfaToken = await challenge(server);
    expect(mfaToken).toMatch(/^mfa_usr_/);
    const done = await server.auth.completeLogin({ mfaToken, code: rfc6238(enrolled.secret, server.clock.now()) });
    expect(done).toMatchObject({ tokenType: 'Bearer', usedRecoveryCode: false });
    const claims = jwt.decode(done.accessToken) as { amr: string[]; auth_time: number; iat: number };
    expect(claims.amr).toEqual(['pwd', 'otp']);
    expect(claims.auth_time).toBe(Math.floor(server.clock.now() / 1000));

    const validated = await server.auth.validate({ accessToken: done.accessToken });
    expect(validated).toMatchObject({ active: true, userId, amr: ['pwd', 'otp'] });
    expect(Number(validated.authTime!.seconds)).toBe(claims.auth_time);
    const me = await server.secure.whoAmI({}, bearer(done.accessToken));
    expect(me.amr).toEqual(['pwd', 'otp']);

    // Refresh keeps amr and auth_time: the session's, not the refresh's.
    server.clock.advance(120_000);
    const refreshed = await server.auth.refresh({ refreshToken: done.refreshToken });
    const after = jwt.decode(refreshed.accessToken) as { amr: string[]; auth_time: number; iat: number };
    expect(after).toMatchObject({ amr: ['pwd', 'otp'], auth_time: claims.auth_time });
    expect(after.iat).toBeGreaterThan(claims.auth_time);
    // The mfa_token is single use.
    expect(await statusOf(server.auth.completeLogin({ mfaToken, code: rfc6238(enrolled.secret, server.clock.now()) }))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'mfa_token is invalid, used or expired; log in again',
    });
  });

  test('a password-only token carries amr pwd; a wrong password gets the same answer as ever, with MFA on or off', async () => {
    const plain = await server.auth.register({ username: 'bob', password: PASSWORD });
    const tokens = await server.auth.login({ username: 'bob', password: PASSWORD });
    expect(jwt.decode(tokens.accessToken)).toMatchObject({ sub: plain.userId, amr: ['pwd'] });
    await userWithTotp(server);
    for (const name of ['alice', 'bob', 'nobody']) {
      expect(await statusOf(server.auth.login({ username: name, password: 'not the password at all' }))).toEqual({ code: status.UNAUTHENTICATED, details: 'invalid username or password' });
    }
  });

  test('a code works once per step (replay refused), ±1 step of skew; the mfa_token expires after 5 minutes', async () => {
    const { secret } = await userWithTotp(server);
    const now = server.clock.now();
    const code = rfc6238(secret, now);
    await server.auth.completeLogin({ mfaToken: await challenge(server), code });
    expect(await statusOf(server.auth.completeLogin({ mfaToken: await challenge(server), code }))).toEqual({ code: status.UNAUTHENTICATED, details: 'the code is not valid' });
    // A typed reason too, so a client knows to ask for another code (the SDK's login() does).
    expect(await errorInfoOf(server.auth.completeLogin({ mfaToken: await challenge(server), code }))).toEqual({ code: status.UNAUTHENTICATED, reason: 'MFA_CODE_INVALID', domain: 'auth.v1', metadata: {} });
    // The previous step's code is older than the one accepted: refused too.
    expect(await statusOf(server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, now, -1) }))).toEqual({ code: status.UNAUTHENTICATED, details: 'the code is not valid' });
    // A phone one step ahead is fine; two steps is not.
    expect(await statusOf(server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, now, 2) }))).toEqual({ code: status.UNAUTHENTICATED, details: 'the code is not valid' });
    await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, now, 1) });

    const late = await challenge(server);
    server.clock.advance(5 * 60_000 + 1000);
    expect(await statusOf(server.auth.completeLogin({ mfaToken: late, code: rfc6238(secret, server.clock.now()) }))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'mfa_token is invalid, used or expired; log in again',
    });
  });

  test('a user holds at most 5 pending logins: after 50 password logins only the newest 5 mfa_tokens work, and the record stays small', async () => {
    const { userId, secret } = await userWithTotp(server);
    const before = (await server.app.store.readUserSecrets(userId))!.data.length;
    const tokens: string[] = [];
    for (let i = 0; i < 50; i++) tokens.push(await challenge(server));
    const stored = (await server.app.store.readUserSecrets(userId))!;
    expect((JSON.parse(stored.data) as { logins: unknown[] }).logins).toHaveLength(5);
    // Five pending logins of ~100 bytes each, whatever the number of logins.
    expect(stored.data.length - before).toBeLessThan(5 * 120);
    expect(await statusOf(server.auth.completeLogin({ mfaToken: tokens[44]!, code: rfc6238(secret, server.clock.now()) }))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'mfa_token is invalid, used or expired; log in again',
    });
    const done = await server.auth.completeLogin({ mfaToken: tokens[45]!, code: rfc6238(secret, server.clock.now()) });
    expect(done.accessToken).not.toBe('');
  });

  test('a recovery code works once, in any case and without dashes, and GetAccount counts what is left', async () => {
    const { recoveryCodes } = await userWithTotp(server);
    const code = recoveryCodes[3]!;
    const done = await server.auth.completeLogin({ mfaToken: await challenge(server), code: code.toLowerCase().replaceAll('-', '') });
    expect(done).toMatchObject({ usedRecoveryCode: true, recoveryCodesLeft: 9 });
    expect(jwt.decode(done.accessToken)).toMatchObject({ amr: ['pwd', 'otp'] });
    expect(await statusOf(server.auth.completeLogin({ mfaToken: await challenge(server), code }))).toEqual({ code: status.UNAUTHENTICATED, details: 'the code is not valid' });
    expect((await server.account.getAccount({}, bearer(done.accessToken))).mfa).toMatchObject({ enabled: true, recoveryCodesLeft: 9 });
  });

  test('100 guesses in parallel cannot get past the limit: 5 are checked, 95 throttled, the right code among the rest is held back too', async () => {
    const { secret } = await userWithTotp(server);
    const mfaToken = await challenge(server);
    const right = rfc6238(secret, server.clock.now());
    const guesses = Array.from({ length: 100 }, (_, i) => (i === 99 ? right : String((Number(right) + 1 + i) % 1_000_000).padStart(6, '0')));
    const results = await Promise.all(guesses.map((code) => statusOf(server.auth.completeLogin({ mfaToken, code })).catch(() => ({ code: -1, details: 'ok' }))));
    const counts = new Map<number, number>();
    for (const r of results) counts.set(r.code, (counts.get(r.code) ?? 0) + 1);
    // The account's 5 free failures run at once; every other guess is refused before any check.
    expect(counts.get(status.UNAUTHENTICATED)).toBe(5);
    expect(counts.get(status.RESOURCE_EXHAUSTED)).toBe(95);
    expect(counts.get(-1)).toBeUndefined();
    expect(server.logs.events('mfa_failed')).toHaveLength(5);
  });

  test("wrong codes sent to the account RPCs count against that session: a token's holder cannot throttle the owner's CompleteLogin", async () => {
    const { secret } = await userWithTotp(server);
    const done = await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
    const stolen = bearer(done.accessToken);
    const wrong = '000000' === rfc6238(secret, server.clock.now()) ? '111111' : '000000';
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push((await statusOf(server.account.regenerateRecoveryCodes({ code: wrong }, stolen))).code);
    // The guesser is held back (five free, then the back-off) ...
    expect(answers.slice(0, 5)).toEqual(Array(5).fill(status.UNAUTHENTICATED));
    expect(answers.slice(5)).toEqual(Array(3).fill(status.RESOURCE_EXHAUSTED));
    // ... and the owner signs in with the next code as ever.
    server.clock.advance(30_000);
    await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
  });

  test('a forged mfa_token counts against the address only: it cannot lock the user out', async () => {
    const { userId, secret } = await userWithTotp(server);
    for (let i = 0; i < 10; i++) {
      expect(await statusOf(server.auth.completeLogin({ mfaToken: `mfa_${userId}.${'A'.repeat(43)}`, code: '123456' }))).toEqual({
        code: status.UNAUTHENTICATED,
        details: 'mfa_token is invalid, used or expired; log in again',
      });
    }
    await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
  });

  test('RegenerateRecoveryCodes needs a code of the factor (the app\'s or a recovery code) and replaces all', async () => {
    const { secret, recoveryCodes } = await userWithTotp(server);
    const done = await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
    const auth = bearer(done.accessToken);
    server.clock.advance(30_000);
    expect(await statusOf(server.account.regenerateRecoveryCodes({ code: '' }, auth))).toEqual({ code: status.INVALID_ARGUMENT, details: 'code is required' });
    expect(await errorInfoOf(server.account.regenerateRecoveryCodes({ code: 'AAAA-AAAA-AAAA-AAAA' }, auth))).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'MFA_CODE_INVALID' });
    const fresh = await server.account.regenerateRecoveryCodes({ code: rfc6238(secret, server.clock.now()) }, auth);
    expect(fresh.recoveryCodes).toHaveLength(10);
    expect(fresh.recoveryCodes.some((c) => recoveryCodes.includes(c))).toBe(false);
    expect(await statusOf(server.auth.completeLogin({ mfaToken: await challenge(server), code: recoveryCodes[1]! }))).toEqual({ code: status.UNAUTHENTICATED, details: 'the code is not valid' });
    // A recovery code does too, and is spent by it.
    const again = await server.account.regenerateRecoveryCodes({ code: fresh.recoveryCodes[0]! }, auth);
    expect(again.recoveryCodes.some((c) => fresh.recoveryCodes.includes(c))).toBe(false);
    expect(server.logs.events('recovery_codes_regenerated').map((e) => e.factor)).toEqual(['totp', 'recovery_code']);
  });

  test('DisableTotp needs the password and a code of the factor; the audit line names who and with what', async () => {
    const { userId, secret, recoveryCodes } = await userWithTotp(server);
    const done = await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
    const auth = bearer(done.accessToken);
    expect(await errorInfoOf(server.account.disableTotp({ password: PASSWORD, code: '' }, auth))).toEqual({ code: status.UNAUTHENTICATED, reason: 'MFA_CODE_REQUIRED', domain: 'auth.v1', metadata: {} });
    expect(await statusOf(server.account.disableTotp({ password: PASSWORD, code: '' }, auth))).toEqual({ code: status.UNAUTHENTICATED, details: 'a current code of the second factor is required (from its app, or a recovery code)' });
    expect(await errorInfoOf(server.account.disableTotp({ password: PASSWORD, code: 'AAAA-AAAA-AAAA-AAAA' }, auth))).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'MFA_CODE_INVALID' });
    expect(await statusOf(server.account.disableTotp({ password: 'not the password at all', code: recoveryCodes[0]! }, auth))).toEqual({ code: status.UNAUTHENTICATED, details: 'invalid username or password' });
    expect((await server.account.getAccount({}, auth)).mfa).toMatchObject({ enabled: true, recoveryCodesLeft: 10 });
    await server.account.disableTotp({ password: PASSWORD, code: recoveryCodes[0]! }, auth);
    expect(await statusOf(server.account.disableTotp({ password: PASSWORD, code: recoveryCodes[1]! }, auth))).toEqual({ code: status.FAILED_PRECONDITION, details: 'no second factor is on' });
    expect((await server.auth.login({ username: 'alice', password: PASSWORD })).mfaRequired).toBe(false);
    expect(server.logs.events('mfa_disabled')).toEqual([expect.objectContaining({ userId, actorId: userId, sessionId: jwt.decode(done.accessToken, { json: true })!.sid, factor: 'recovery_code' })]);
  });

  test('replacing a factor needs a code of the one that is on; the old factor then stops, and its pending logins go', async () => {
    const { userId, secret, recoveryCodes } = await userWithTotp(server);
    const done = await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
    const auth = bearer(done.accessToken);
    const second = await server.account.enrollTotp({}, auth);
    server.clock.advance(30_000);
    // The old factor still logs in until the new one is confirmed.
    await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
    server.clock.advance(30_000);
    const pendingBefore = await challenge(server);
    const newCode = rfc6238(second.secret, server.clock.now());
    expect(await errorInfoOf(server.account.confirmTotp({ password: PASSWORD, enrollmentId: second.enrollmentId, code: newCode }, auth))).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'MFA_CODE_REQUIRED' });
    expect(await errorInfoOf(server.account.confirmTotp({ password: PASSWORD, enrollmentId: second.enrollmentId, code: newCode, currentCode: 'AAAA-AAAA-AAAA-AAAA' }, auth))).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'MFA_CODE_INVALID' });
    // A code of the new app does not stand in for the old factor.
    expect(await errorInfoOf(server.account.confirmTotp({ password: PASSWORD, enrollmentId: second.enrollmentId, code: newCode, currentCode: newCode }, auth))).toMatchObject({ reason: 'MFA_CODE_INVALID' });
    await server.account.confirmTotp({ password: PASSWORD, enrollmentId: second.enrollmentId, code: newCode, currentCode: rfc6238(secret, server.clock.now()) }, auth);
    server.clock.advance(30_000);
    expect(await statusOf(server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) }))).toEqual({ code: status.UNAUTHENTICATED, details: 'the code is not valid' });
    expect(await statusOf(server.auth.completeLogin({ mfaToken: pendingBefore, code: rfc6238(second.secret, server.clock.now()) }))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'mfa_token is invalid, used or expired; log in again',
    });
    expect(await statusOf(server.auth.completeLogin({ mfaToken: await challenge(server), code: recoveryCodes[0]! }))).toEqual({ code: status.UNAUTHENTICATED, details: 'the code is not valid' });
    await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(second.secret, server.clock.now()) });
    expect(server.logs.events('mfa_replaced')).toEqual([expect.objectContaining({ userId, actorId: userId, factor: 'totp', sessionsEnded: 2 })]);
  });

  test('confirming a factor ends every other session of the user; the confirming one goes on', async () => {
    const { userId } = await server.auth.register({ username: 'dora', password: PASSWORD });
    const sessions = await Promise.all([1, 2, 3].map(() => server.auth.login({ username: 'dora', password: PASSWORD })));
    const [confirming, ...others] = sessions;
    const auth = bearer(confirming!.accessToken);
    const enrolled = await server.account.enrollTotp({}, auth);
    // A wrong code ends nothing.
    await expect(server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: '000000' === rfc6238(enrolled.secret, server.clock.now()) ? '111111' : '000000' }, auth)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    for (const s of others) expect(await server.auth.validate({ accessToken: s!.accessToken })).toMatchObject({ active: true });
    await server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, server.clock.now()) }, auth);
    for (const s of others) {
      expect(await server.auth.validate({ accessToken: s!.accessToken })).toMatchObject({ active: false });
      expect(await statusOf(server.auth.refresh({ refreshToken: s!.refreshToken }))).toMatchObject({ code: status.UNAUTHENTICATED });
    }
    expect(await server.auth.validate({ accessToken: confirming!.accessToken })).toMatchObject({ active: true });
    const next = await server.auth.refresh({ refreshToken: confirming!.refreshToken });
    expect((await server.account.getAccount({}, bearer(next.accessToken))).user).toMatchObject({ username: 'dora' });
    expect(server.logs.events('mfa_enabled')).toEqual([expect.objectContaining({ userId, actorId: userId, sessionId: jwt.decode(confirming!.accessToken, { json: true })!.sid, sessionsEnded: 2 })]);
  });

  test('a stolen token alone cannot turn a first factor on (it would end the owner\'s other sessions and lock them out): the password is needed', async () => {
    const { userId } = await server.auth.register({ username: 'hal', password: PASSWORD });
    const owner = await server.auth.login({ username: 'hal', password: PASSWORD });
    const stolen = bearer((await server.auth.login({ username: 'hal', password: PASSWORD })).accessToken);
    const theirs = await server.account.enrollTotp({}, stolen);
    const code = rfc6238(theirs.secret, server.clock.now());
    expect(await statusOf(server.account.confirmTotp({ enrollmentId: theirs.enrollmentId, code }, stolen))).toEqual({ code: status.INVALID_ARGUMENT, details: 'password is required' });
    expect(await statusOf(server.account.confirmTotp({ enrollmentId: theirs.enrollmentId, code, password: 'a guess at the password!' }, stolen))).toEqual({ code: status.UNAUTHENTICATED, details: 'invalid username or password' });
    // Nothing changed: the owner's session lives, and Login still needs no code.
    expect(await server.auth.validate({ accessToken: owner.accessToken })).toMatchObject({ active: true, userId });
    expect((await server.auth.login({ username: 'hal', password: PASSWORD })).mfaRequired).toBe(false);
    expect(server.logs.events('mfa_enabled')).toEqual([]);
  });

  test('turning the factor off drops an enrollment started while it was on (it could be someone else\'s)', async () => {
    const { secret, recoveryCodes } = await userWithTotp(server);
    const done = await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
    const auth = bearer(done.accessToken);
    const planted = await server.account.enrollTotp({}, auth);
    await server.account.disableTotp({ password: PASSWORD, code: recoveryCodes[0]! }, auth);
    expect(await statusOf(server.account.confirmTotp({ password: PASSWORD, enrollmentId: planted.enrollmentId, code: rfc6238(planted.secret, server.clock.now()) }, auth))).toEqual({
      code: status.NOT_FOUND,
      details: 'no such enrollment, or it has expired; enroll again',
    });
  });

  test('a CompleteLogin refused for a password changed since the Login spends no code', async () => {
    const { secret, recoveryCodes } = await userWithTotp(server);
    const stale = await challenge(server);
    const done = await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
    await server.account.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, bearer(done.accessToken));
    expect(await statusOf(server.auth.completeLogin({ mfaToken: stale, code: recoveryCodes[0]! }))).toEqual({ code: status.UNAUTHENTICATED, details: 'mfa_token is invalid, used or expired; log in again' });
    expect((await server.account.getAccount({}, bearer(done.accessToken))).mfa).toMatchObject({ recoveryCodesLeft: 10 });
    await server.auth.completeLogin({ mfaToken: await challenge(server, 'alice', NEW_PASSWORD), code: recoveryCodes[0]! });
    // A disabled account is said so, and the code stays unspent too.
    const adminId = (await server.auth.register({ username: 'root', password: PASSWORD })).userId;
    await server.app.store.updateUser(adminId, { roles: ['admin'] });
    const admin = bearer((await server.auth.login({ username: 'root', password: PASSWORD })).accessToken);
    const pending = await challenge(server, 'alice', NEW_PASSWORD);
    const aliceId = (await server.admin.getUser({ username: 'alice' }, admin)).user!.userId;
    await server.app.store.updateUser(aliceId, { disabled: true });
    expect(await statusOf(server.auth.completeLogin({ mfaToken: pending, code: recoveryCodes[1]! }))).toEqual({ code: status.FAILED_PRECONDITION, details: 'account disabled' });
    await server.admin.enableUser({ userId: aliceId }, admin);
    expect((await server.admin.getUser({ userId: aliceId }, admin)).user).toBeDefined();
    await server.auth.completeLogin({ mfaToken: await challenge(server, 'alice', NEW_PASSWORD), code: recoveryCodes[1]! });
  });

  test('step-up declared in the proto: StepUpPing refuses a password-only token (MFA_REQUIRED) and an old sign-in (REAUTHENTICATION_REQUIRED)', async () => {
    await server.auth.register({ username: 'bob', password: PASSWORD });
    const plain = await server.auth.login({ username: 'bob', password: PASSWORD });
    expect(await errorInfoOf(server.secure.stepUpPing({}, bearer(plain.accessToken)))).toEqual({ code: status.UNAUTHENTICATED, reason: 'MFA_REQUIRED', domain: 'auth.v1', metadata: {} });

    const { secret } = await userWithTotp(server);
    const done = await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
    expect(await server.secure.stepUpPing({}, bearer(done.accessToken))).toMatchObject({ message: 'pong', authAgeSeconds: 0 });
    server.clock.advance(600_000);
    const refreshed = await server.auth.refresh({ refreshToken: done.refreshToken });
    server.clock.advance(301_000);
    // 901 s after the sign-in: a refreshed token does not make the sign-in newer.
    expect(await errorInfoOf(server.secure.stepUpPing({}, bearer(refreshed.accessToken)))).toEqual({
      code: status.UNAUTHENTICATED,
      reason: 'REAUTHENTICATION_REQUIRED',
      domain: 'auth.v1',
      metadata: { max_age_seconds: '900' },
    });
    expect(await statusOf(server.secure.stepUpPing({}, bearer(refreshed.accessToken)))).toEqual({ code: status.UNAUTHENTICATED, details: 'this method needs a sign-in within the last 900 s' });
  });

  test('AdminService.ResetMfa removes the factor and ends every session', async () => {
    const { userId, secret } = await userWithTotp(server);
    const done = await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
    const adminId = (await server.auth.register({ username: 'root', password: PASSWORD })).userId;
    await server.app.store.updateUser(adminId, { roles: ['admin'] });
    const admin = bearer((await server.auth.login({ username: 'root', password: PASSWORD })).accessToken);
    await server.admin.resetMfa({ userId }, admin);
    expect(await server.auth.validate({ accessToken: done.accessToken })).toMatchObject({ active: false });
    expect((await server.auth.login({ username: 'alice', password: PASSWORD })).mfaRequired).toBe(false);
    expect(await statusOf(server.admin.resetMfa({ userId: 'usr_AAAAAAAAAAAAAAAAAAAAAA' }, admin))).toEqual({ code: status.NOT_FOUND, details: 'user not found' });
    expect(server.logs.events('mfa_reset')).toEqual([expect.objectContaining({ userId, actorId: adminId, sessionsEnded: 2 })]);
  });
});

describe('roles that need a second factor', () => {
  test('AUTH_MFA_REQUIRED_ROLES=admin: without a factor the admin role is withheld (MFA_REQUIRED), with one it is granted', async () => {
    const server = await startTestServer({ env: { AUTH_MFA_REQUIRED_ROLES: 'admin' } });
    try {
      const { userId } = await server.auth.register({ username: 'root', password: PASSWORD });
      await server.app.store.updateUser(userId, { roles: ['admin', 'ops'] });
      const login = await server.auth.login({ username: 'root', password: PASSWORD });
      expect(login).toMatchObject({ mfaRequired: false, mfaEnrollmentRequired: true });
      expect(jwt.decode(login.accessToken)).toMatchObject({ roles: ['ops'] });
      expect(await server.auth.validate({ accessToken: login.accessToken })).toMatchObject({ active: true, roles: ['ops'] });
      expect(await errorInfoOf(server.secure.adminPing({}, bearer(login.accessToken)))).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'MFA_REQUIRED' });
      // Refresh does not hand the role back.
      expect(jwt.decode((await server.auth.refresh({ refreshToken: login.refreshToken })).accessToken)).toMatchObject({ roles: ['ops'] });

      const enrolled = await server.account.enrollTotp({}, bearer(login.accessToken));
      await server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, server.clock.now()) }, bearer(login.accessToken));
      server.clock.advance(30_000);
      const mfaToken = (await server.auth.login({ username: 'root', password: PASSWORD })).mfaToken;
      const done = await server.auth.completeLogin({ mfaToken, code: rfc6238(enrolled.secret, server.clock.now()) });
      expect(jwt.decode(done.accessToken)).toMatchObject({ roles: ['admin', 'ops'] });
      expect(await server.secure.adminPing({}, bearer(done.accessToken))).toMatchObject({ message: 'pong' });
    } finally {
      await server.close();
    }
  });

  test.each([
    { name: 'AUTH_MFA_REQUIRED_ROLES=admin: a service account holding admin gets it with its secret alone (as check-config says)', env: { AUTH_MFA_REQUIRED_ROLES: 'admin' }, want: 'ok' },
    { name: 'AUTH_ADMIN_REQUIRE_MFA=true: no service account gets into AdminService', env: { AUTH_ADMIN_REQUIRE_MFA: 'true' }, want: 'MFA_REQUIRED' },
  ])('$name', async ({ env, want }) => {
    const server = await startTestServer({ env });
    try {
      const { userId } = await server.auth.register({ username: 'root', password: PASSWORD });
      await server.app.store.updateUser(userId, { roles: ['admin'] });
      // The admin sets the account up (with a factor where AdminService asks for one).
      const plain = await server.auth.login({ username: 'root', password: PASSWORD });
      const enrolled = await server.account.enrollTotp({}, bearer(plain.accessToken));
      await server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, server.clock.now()) }, bearer(plain.accessToken));
      server.clock.advance(30_000);
      const done = await server.auth.completeLogin({ mfaToken: (await server.auth.login({ username: 'root', password: PASSWORD })).mfaToken, code: rfc6238(enrolled.secret, server.clock.now()) });
      const created = await server.admin.createServiceAccount({ name: 'provisioner', roles: ['admin'] }, bearer(done.accessToken));
      const token = (await server.auth.issueServiceToken({ clientId: created.clientId, clientSecret: created.clientSecret })).accessToken;
      const outcome = await server.admin.listUsers({}, bearer(token)).then(() => 'ok', async (err: unknown) => (await errorInfoOf(Promise.reject(err))).reason);
      expect(outcome).toBe(want);
    } finally {
      await server.close();
    }
  });

  test('AUTH_ADMIN_REQUIRE_MFA=true: every AdminService call needs a second factor', async () => {
    const server = await startTestServer({ env: { AUTH_ADMIN_REQUIRE_MFA: 'true' } });
    try {
      const { userId } = await server.auth.register({ username: 'root', password: PASSWORD });
      await server.app.store.updateUser(userId, { roles: ['admin'] });
      const plain = await server.auth.login({ username: 'root', password: PASSWORD });
      expect(await errorInfoOf(server.admin.listUsers({}, bearer(plain.accessToken)))).toMatchObject({ code: status.UNAUTHENTICATED, reason: 'MFA_REQUIRED' });
      // SecureService.AdminPing is not AdminService: its own policy stands.
      expect(await server.secure.adminPing({}, bearer(plain.accessToken))).toMatchObject({ message: 'pong' });
      const enrolled = await server.account.enrollTotp({}, bearer(plain.accessToken));
      await server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, server.clock.now()) }, bearer(plain.accessToken));
      server.clock.advance(30_000);
      const mfaToken = (await server.auth.login({ username: 'root', password: PASSWORD })).mfaToken;
      const done = await server.auth.completeLogin({ mfaToken, code: rfc6238(enrolled.secret, server.clock.now()) });
      expect((await server.admin.listUsers({}, bearer(done.accessToken))).users).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});

describe('password reset', () => {
  let hook: Server;
  let received: Array<{ headers: IncomingMessage['headers']; body: string }>;
  let answer: number;
  let url: string;
  beforeEach(async () => {
    received = [];
    answer = 204;
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(answer).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/reset`;
  });
  afterEach(async () => {
    await new Promise((resolve) => hook.close(resolve));
  });

  test('RequestPasswordReset answers OK for any name; the hook gets a Standard Webhook a verifier accepts; the code resets once', async () => {
    const server = await startTestServer({ env: { AUTH_PASSWORD_RESET_HOOK_URL: url, AUTH_PASSWORD_RESET_HOOK_SECRET: HOOK_SECRET } });
    try {
      const { userId } = await server.auth.register({ username: 'alice', password: PASSWORD });
      const old = await server.auth.login({ username: 'alice', password: PASSWORD });
      expect(await server.auth.requestPasswordReset({ username: 'nobody' })).toEqual(expect.objectContaining({}));
      expect(await server.auth.requestPasswordReset({ username: 'Alice' })).toEqual(expect.objectContaining({}));
      await eventually(() => expect(received).toHaveLength(1));
      const { headers, body } = received[0]!;
      // An independent Standard Webhooks implementation verifies the signature, at the server's
      // (manual) time, since it also checks the timestamp is recent; a changed body is refused.
      const now = jest.spyOn(Date, 'now').mockReturnValue(server.clock.now());
      const signed = { 'webhook-id': String(headers['webhook-id']), 'webhook-timestamp': String(headers['webhook-timestamp']), 'webhook-signature': String(headers['webhook-signature']) };
      try {
        expect(new Webhook(HOOK_SECRET).verify(body, signed)).toEqual(JSON.parse(body));
        expect(() => new Webhook(HOOK_SECRET).verify(body.replace('alice', 'mallory'), signed)).toThrow('No matching signature found');
      } finally {
        now.mockRestore();
      }
      const notice = JSON.parse(body) as { user_id: string; username: string; code: string; expires_at: string };
      expect(notice).toEqual({ user_id: userId, username: 'alice', code: expect.stringMatching(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/), expires_at: new Date(server.clock.now() + 15 * 60_000).toISOString() });
      // The code is in no log line.
      expect(server.logs.text).not.toContain(notice.code);

      expect(await statusOf(server.auth.resetPassword({ username: 'alice', code: 'AAAA-AAAA-AAAA-AAAA', newPassword: NEW_PASSWORD, mfaCode: '' }))).toEqual({
        code: status.UNAUTHENTICATED,
        details: 'the username, reset code or second factor is not valid, or the code was used or has expired',
      });
      expect(await statusOf(server.auth.resetPassword({ username: 'alice', code: notice.code, newPassword: 'short', mfaCode: '' }))).toMatchObject({ code: status.INVALID_ARGUMENT });
      await server.auth.resetPassword({ username: 'alice', code: notice.code, newPassword: NEW_PASSWORD, mfaCode: '' });
      expect(await server.auth.validate({ accessToken: old.accessToken })).toMatchObject({ active: false });
      expect(await statusOf(server.auth.resetPassword({ username: 'alice', code: notice.code, newPassword: `${NEW_PASSWORD}!`, mfaCode: '' }))).toMatchObject({ code: status.UNAUTHENTICATED });
      expect((await server.auth.login({ username: 'alice', password: NEW_PASSWORD })).accessToken).not.toBe('');
    } finally {
      await server.close();
    }
  });

  test('RequestPasswordReset bounds: an address is told after 10 an hour; a user is sent at most 3 codes an hour per address, silently, so others cannot spend the owner\'s', async () => {
    const server = await startTestServer({ env: { AUTH_PASSWORD_RESET_HOOK_URL: url, AUTH_PASSWORD_RESET_HOOK_SECRET: HOOK_SECRET, AUTH_TRUSTED_PROXIES: 'loopback' } });
    const from = (address: string) => {
      const metadata = new Metadata();
      metadata.set('x-forwarded-for', address);
      return { metadata };
    };
    try {
      await server.auth.register({ username: 'alice', password: PASSWORD });
      // One address: ten requests (for made-up names) answered OK, the eleventh told to wait.
      for (let i = 0; i < 10; i++) await server.auth.requestPasswordReset({ username: `nobody${i}` }, from('203.0.113.1'));
      expect(await statusOf(server.auth.requestPasswordReset({ username: 'alice' }, from('203.0.113.1')))).toEqual({ code: status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/^too many password reset requests; retry in \d+ s$/) });
      // Someone asks for alice's codes from two addresses, five times each: three each are sent, the rest dropped silently.
      for (let i = 0; i < 10; i++) await server.auth.requestPasswordReset({ username: 'alice' }, from(`198.51.100.${i % 2}`));
      await eventually(() => expect(server.logs.events('password_reset_throttled').filter((e) => e.scope === 'user')).toHaveLength(4));
      await eventually(() => expect(received).toHaveLength(6));
      // Alice asks from her own address: she gets a code, and requests from elsewhere after hers do not cancel it.
      await server.auth.requestPasswordReset({ username: 'alice' }, from('192.0.2.7'));
      await eventually(() => expect(received).toHaveLength(7));
      const code = (JSON.parse(received[6]!.body) as { code: string }).code;
      for (const address of ['198.51.100.7', '198.51.100.8', '198.51.100.9']) await server.auth.requestPasswordReset({ username: 'alice' }, from(address));
      await eventually(() => expect(received).toHaveLength(10));
      await server.auth.resetPassword({ username: 'alice', code, newPassword: NEW_PASSWORD, mfaCode: '' });
      // The reset spent every code she held.
      expect(await statusOf(server.auth.resetPassword({ username: 'alice', code: (JSON.parse(received[9]!.body) as { code: string }).code, newPassword: NEW_PASSWORD, mfaCode: '' }))).toMatchObject({ code: status.UNAUTHENTICATED });
      // An hour later an address may be sent codes again.
      server.clock.advance(3_600_000);
      await server.auth.requestPasswordReset({ username: 'alice' }, from('198.51.100.0'));
      await eventually(() => expect(received).toHaveLength(11));
    } finally {
      await server.close();
    }
  });

  test('a hook that fails is retried with back-off on the clock, keeping its webhook-id', async () => {
    answer = 503;
    const server = await startTestServer({ env: { AUTH_PASSWORD_RESET_HOOK_URL: url, AUTH_PASSWORD_RESET_HOOK_SECRET: HOOK_SECRET } });
    try {
      await server.auth.register({ username: 'alice', password: PASSWORD });
      // The retry's timer, seen as it is set: the clock moves only once the service has read the
      // 503 (the hook server's receipt comes first, and a busy machine can run the test ahead).
      const delays: number[] = [];
      const setTimer = server.clock.setTimer.bind(server.clock);
      server.clock.setTimer = (ms, callback) => (delays.push(ms), setTimer(ms, callback));
      await server.auth.requestPasswordReset({ username: 'alice' });
      await eventually(() => expect(received).toHaveLength(1));
      await eventually(() => expect(delays).toContain(5000));
      answer = 200;
      // The first retry waits 5 s (then 10, 20, 40, 80: six tries over two and a half minutes).
      server.clock.advance(4999);
      await new Promise((r) => setTimeout(r, 50));
      expect(received).toHaveLength(1);
      server.clock.advance(1);
      await eventually(() => expect(received).toHaveLength(2));
      expect(received[1]!.headers['webhook-id']).toBe(received[0]!.headers['webhook-id']);
      await eventually(() => expect(server.logs.events('password_reset_hook_delivered')).toEqual([expect.objectContaining({ tries: 2 })]));
    } finally {
      await server.close();
    }
  });

  test('without a hook RequestPasswordReset is FAILED_PRECONDITION; an admin code resets, and with MFA on the second factor is needed too', async () => {
    const server = await startTestServer();
    try {
      expect(await statusOf(server.auth.requestPasswordReset({ username: 'alice' }))).toMatchObject({ code: status.FAILED_PRECONDITION });
      const { userId, secret } = await userWithTotp(server);
      const adminId = (await server.auth.register({ username: 'root', password: PASSWORD })).userId;
      await server.app.store.updateUser(adminId, { roles: ['admin'] });
      const admin = bearer((await server.auth.login({ username: 'root', password: PASSWORD })).accessToken);
      const { code, expiresAt } = await server.admin.createPasswordResetCode({ userId }, admin);
      expect(Number(expiresAt!.seconds) * 1000).toBe(Math.floor((server.clock.now() + 15 * 60_000) / 1000) * 1000);
      const refused = { code: status.UNAUTHENTICATED, details: 'the username, reset code or second factor is not valid, or the code was used or has expired' };
      expect(await statusOf(server.auth.resetPassword({ username: 'alice', code, newPassword: NEW_PASSWORD, mfaCode: '' }))).toEqual(refused);
      expect(await statusOf(server.auth.resetPassword({ username: 'alice', code, newPassword: NEW_PASSWORD, mfaCode: '000000' === rfc6238(secret, server.clock.now()) ? '111111' : '000000' }))).toEqual(refused);
      await server.auth.resetPassword({ username: 'alice', code, newPassword: NEW_PASSWORD, mfaCode: rfc6238(secret, server.clock.now()) });
      expect((await server.auth.login({ username: 'alice', password: NEW_PASSWORD })).mfaRequired).toBe(true);

      // Expired after 15 minutes.
      const second = await server.admin.createPasswordResetCode({ userId }, admin);
      server.clock.advance(15 * 60_000 + 1);
      expect(await statusOf(server.auth.resetPassword({ username: 'alice', code: second.code, newPassword: PASSWORD, mfaCode: rfc6238(secret, server.clock.now()) }))).toEqual(refused);
    } finally {
      await server.close();
    }
  });
});

describe('the SDK', () => {
  test('login() asks its mfaCode callback for a code (again after a wrong one); stepUpRequired reads the refusal', async () => {
    const server = await startTestServer();
    const client = createAuthClient(server.address);
    try {
      const { secret } = await userWithTotp(server);
      await expect(client.login('alice', PASSWORD)).rejects.toThrow(MfaRequiredError);
      const asked: number[] = [];
      const session = await client.login('alice', PASSWORD, {
        clock: server.clock,
        mfaCode: ({ attempt }) => {
          asked.push(attempt);
          return attempt === 1 ? '000000' === rfc6238(secret, server.clock.now()) ? '111111' : '000000' : rfc6238(secret, server.clock.now());
        },
      });
      expect(asked).toEqual([1, 2]);
      const token = await session.accessToken();
      expect(jwt.decode(token)).toMatchObject({ amr: ['pwd', 'otp'] });
      expect(await client.secure.stepUpPing({}, bearer(token))).toMatchObject({ message: 'pong' });

      await server.auth.register({ username: 'bob', password: PASSWORD });
      const plain = await client.login('bob', PASSWORD, { clock: server.clock });
      const refusal = await client.secure.stepUpPing({}, bearer(await plain.accessToken())).catch((err: unknown) => err);
      expect(stepUpRequired(refusal)).toEqual({ reason: 'MFA_REQUIRED', maxAgeSeconds: undefined });
      expect(stepUpRequired(new Error('other'))).toBeUndefined();
      await plain.logout();
      await session.logout();
    } finally {
      client.close();
      await server.close();
    }
  });
});

// A C-core client (Python grpcio) reads the step-up refusal's google.rpc.Status from the
// grpc-status-details-bin trailer as grpc-java, grpc-go and grpcurl do (printed here as hex).
const PYTHON_STEP_UP = `
import grpc, json, sys
addr, token = sys.argv[1:3]
ping = grpc.insecure_channel(addr).unary_unary('/auth.v1.SecureService/StepUpPing', request_serializer=lambda r: r, response_deserializer=lambda b: b)
try:
    ping(b'', metadata=[('authorization', 'Bearer ' + token)], timeout=5)
    print(json.dumps({'code': 'OK'}))
except grpc.RpcError as e:
    details = [v for k, v in (e.trailing_metadata() or ()) if k == 'grpc-status-details-bin']
    print(json.dumps({'code': e.code().name, 'details': e.details(), 'status': details[0].hex() if details else None}))
`;

describeNeeding(['python3-grpcio'], 'step-up refusals read by a C-core client', () => {
  test('Python grpcio gets UNAUTHENTICATED with a google.rpc.Status holding ErrorInfo MFA_REQUIRED; with a second factor, OK', async () => {
    const server = await startTestServer();
    try {
      const { secret } = await userWithTotp(server);
      await server.auth.register({ username: 'carol', password: PASSWORD });
      const pwdOnly = (await server.auth.login({ username: 'carol', password: PASSWORD })).accessToken;
      const refused = await runPython(PYTHON_STEP_UP, [server.address, pwdOnly]);
      expect(refused.stderr).toBe('');
      expect(refused.lines[0]).toMatchObject({ code: 'UNAUTHENTICATED', details: 'this method needs a sign-in with a second factor' });
      const st = fromBinary(StatusSchema, Buffer.from(String(refused.lines[0]!.status), 'hex'));
      expect(st.code).toBe(status.UNAUTHENTICATED);
      expect(anyUnpack(st.details[0]!, ErrorInfoSchema)).toMatchObject({ reason: 'MFA_REQUIRED', domain: 'auth.v1' });

      const done = await server.auth.completeLogin({ mfaToken: await challenge(server), code: rfc6238(secret, server.clock.now()) });
      expect((await runPython(PYTHON_STEP_UP, [server.address, done.accessToken])).lines).toEqual([{ code: 'OK' }]);
    } finally {
      await server.close();
    }
  });
});

describeNeeding(['python3-grpcio'], 'the factor cannot be taken over, seen from a C-core client', () => {
  test('Python grpcio: a stolen token (even with the password) cannot replace or remove the factor, and the sessions from before it ended when it was confirmed', async () => {
    const server = await startTestServer();
    try {
      const A = '/auth.v1.AccountService/';
      const { userId } = await server.auth.register({ username: 'erin', password: PASSWORD });
      // The attacker holds a password-only session from before the owner turned the factor on.
      const stolen = await server.auth.login({ username: 'erin', password: PASSWORD });
      const owner = await server.auth.login({ username: 'erin', password: PASSWORD });
      const enrolled = await server.account.enrollTotp({}, bearer(owner.accessToken));
      const { recoveryCodes } = await server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, server.clock.now()) }, bearer(owner.accessToken));
      expect(await pythonCalls(server.address, [
        ['/auth.v1.AuthService/Validate', { accessToken: stolen.accessToken }, ''],
        ['/auth.v1.AuthService/Refresh', { refreshToken: stolen.refreshToken }, ''],
        [`${A}GetAccount`, {}, stolen.accessToken],
      ])).toEqual([
        { code: 'OK', response: { reason: 'INACTIVE_REASON_REVOKED' } },
        { code: 'UNAUTHENTICATED', details: 'refresh token is invalid, expired or revoked' },
        { code: 'UNAUTHENTICATED', details: 'access token is not valid: revoked' },
      ]);

      // Later the attacker sees a token of the owner's second-factor session (a backend's log, say) and knows the password.
      server.clock.advance(30_000);
      const seen = await server.auth.completeLogin({ mfaToken: await challenge(server, 'erin'), code: rfc6238(enrolled.secret, server.clock.now()) });
      const [theirs] = await pythonCalls(server.address, [[`${A}EnrollTotp`, {}, seen.accessToken]]);
      expect(theirs).toMatchObject({ code: 'OK', response: { enrollmentId: expect.stringMatching(/^enr_/) } });
      const attackerSecret = String(theirs!.response!.secret);
      const attackerCode = rfc6238(attackerSecret, server.clock.now());
      expect(await pythonCalls(server.address, [
        [`${A}ConfirmTotp`, { enrollmentId: theirs!.response!.enrollmentId, code: attackerCode }, seen.accessToken],
        [`${A}ConfirmTotp`, { enrollmentId: theirs!.response!.enrollmentId, code: attackerCode, password: PASSWORD }, seen.accessToken],
        [`${A}ConfirmTotp`, { enrollmentId: theirs!.response!.enrollmentId, code: attackerCode, currentCode: attackerCode, password: PASSWORD }, seen.accessToken],
        [`${A}DisableTotp`, { password: PASSWORD }, seen.accessToken],
        [`${A}DisableTotp`, { password: PASSWORD, code: 'AAAA-AAAA-AAAA-AAAA' }, seen.accessToken],
        [`${A}RegenerateRecoveryCodes`, { code: attackerCode }, seen.accessToken],
      ])).toEqual([
        { code: 'INVALID_ARGUMENT', details: 'password is required' },
        { code: 'UNAUTHENTICATED', details: 'a current code of the second factor is required (from its app, or a recovery code)' },
        { code: 'UNAUTHENTICATED', details: 'the code is not valid' },
        { code: 'UNAUTHENTICATED', details: 'a current code of the second factor is required (from its app, or a recovery code)' },
        { code: 'UNAUTHENTICATED', details: 'the code is not valid' },
        { code: 'UNAUTHENTICATED', details: 'the code is not valid' },
      ]);
      // The owner's app and recovery codes still work; the attacker's app does not.
      server.clock.advance(30_000);
      expect(await statusOf(server.auth.completeLogin({ mfaToken: await challenge(server, 'erin'), code: rfc6238(attackerSecret, server.clock.now()) }))).toMatchObject({ code: status.UNAUTHENTICATED });
      await server.auth.completeLogin({ mfaToken: await challenge(server, 'erin'), code: rfc6238(enrolled.secret, server.clock.now()) });
      await server.auth.completeLogin({ mfaToken: await challenge(server, 'erin'), code: recoveryCodes[0]! });
      expect(server.logs.events('mfa_replaced')).toEqual([]);
      expect(server.logs.events('mfa_enabled')).toEqual([expect.objectContaining({ userId, sessionsEnded: 1 })]);
    } finally {
      await server.close();
    }
  });
});
