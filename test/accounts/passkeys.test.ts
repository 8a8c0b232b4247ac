import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import jwt from 'jsonwebtoken';
import { pythonCalls, SYSTEM_PYTHON } from '../helpers/python-grpc';
import { SoftAuthenticator, type Misbehaviour } from '../helpers/authenticator';
import { rfc6238 } from '../helpers/rfc6238';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';

const ORIGIN = 'https://app.example.test';
const ENV = { AUTH_WEBAUTHN_RP_ID: 'example.test', AUTH_WEBAUTHN_ORIGINS: `${ORIGIN},https://example.test` };

/** A user signed in with their password: their id and a bearer for the account RPCs. */
async function signedIn(server: TestServer, name = 'alice') {
  const { userId } = await server.auth.register({ username: name, password: PASSWORD });
  const login = await server.auth.login({ username: name, password: PASSWORD });
  return { userId, login, auth: bearer(login.accessToken) };
}

/** Registers a passkey for the session `auth` with the authenticator; returns the passkey. */
async function addPasskey(server: TestServer, auth: ReturnType<typeof bearer>, device: SoftAuthenticator, name = 'laptop') {
  const started = await server.account.startPasskeyRegistration({}, auth);
  const made = device.create(started.optionsJson);
  const { passkey } = await server.account.finishPasskeyRegistration({ ceremonyId: started.ceremonyId, responseJson: made.json, name }, auth);
  return passkey!;
}

/** A passkey sign-in with the authenticator (username-less unless `username`), misbehaving as asked. */
async function passkeyLogin(server: TestServer, device: SoftAuthenticator, m: Misbehaviour = {}, username = '') {
  const started = await server.auth.startPasskeyLogin({ username });
  return server.auth.finishPasskeyLogin({ ceremonyId: started.ceremonyId, responseJson: device.get(started.optionsJson, m) });
}

describe('passkeys over gRPC', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer({ env: ENV });
  });
  afterEach(async () => {
    await server.close();
  });

  test('register, list, then a username-less sign-in: tokens with amr ["pop","mfa"] that pass an mfa step-up', async () => {
    const { userId, auth } = await signedIn(server);
    const started = await server.account.startPasskeyRegistration({}, auth);
    expect(started.ceremonyId).toMatch(/^pkc_[A-Za-z0-9_-]{22}$/);
    const options = JSON.parse(started.optionsJson);
    expect(options).toMatchObject({
      rp: { id: 'example.test', name: 'grpc-auth' },
      user: { name: 'alice', displayName: 'alice' },
      attestation: 'none',
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
      excludeCredentials: [],
    });
    expect(options.challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The user handle is random: never the user id or the name.
    expect(Buffer.from(options.user.id, 'base64url')).toHaveLength(32);
    expect(options.user.id).not.toContain(userId.slice(4));

    const device = new SoftAuthenticator(ORIGIN);
    const made = device.create(started.optionsJson);
    const { passkey } = await server.account.finishPasskeyRegistration({ ceremonyId: started.ceremonyId, responseJson: made.json, name: 'laptop' }, auth);
    expect(passkey!).toMatchObject({ passkeyId: made.credential.id.toString('base64url'), name: 'laptop', transports: ['internal'], backupEligible: false, backedUp: false, aaguid: '00000000-0000-0000-0000-000000000000' });
    expect((await server.account.listPasskeys({}, auth)).passkeys.map((p) => p.name)).toEqual(['laptop']);
    expect(server.logs.events('passkey_added')).toEqual([expect.objectContaining({ userId, passkeyId: passkey!.passkeyId, sessionsEnded: 0 })]);

    // A password-only session cannot add a second passkey: the account has a factor now.
    expect(await statusOf(server.account.startPasskeyRegistration({}, auth))).toEqual({ code: status.UNAUTHENTICATED, details: 'this account has a second factor: sign in with it to add a passkey' });

    const loginOptions = await server.auth.startPasskeyLogin({ username: '' });
    expect(JSON.parse(loginOptions.optionsJson)).toMatchObject({ rpId: 'example.test', userVerification: 'required', allowCredentials: [] });
    const tokens = await server.auth.finishPasskeyLogin({ ceremonyId: loginOptions.ceremonyId, responseJson: device.get(loginOptions.optionsJson) });
    expect(tokens).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
    expect(jwt.decode(tokens.accessToken)).toMatchObject({ sub: userId, amr: ['pop', 'mfa'] });
    expect(await server.auth.validate({ accessToken: tokens.accessToken })).toMatchObject({ active: true, amr: ['pop', 'mfa'] });
    await expect(server.secure.stepUpPing({}, bearer(tokens.accessToken))).resolves.toBeDefined();
    expect((await statusOf(server.secure.stepUpPing({}, auth))).code).toBe(status.UNAUTHENTICATED);
    // Refresh keeps the amr.
    const refreshed = await server.auth.refresh({ refreshToken: tokens.refreshToken });
    expect(jwt.decode(refreshed.accessToken)).toMatchObject({ amr: ['pop', 'mfa'] });
    expect(server.logs.events('passkey_login_succeeded')).toEqual([expect.objectContaining({ userId, passkeyId: passkey!.passkeyId })]);
    expect((await server.account.listPasskeys({}, auth)).passkeys[0]!.lastUsedAt).toBeDefined();
    // From the passkey session, a second registration excludes the first passkey; the handle stays the same.
    const again = JSON.parse((await server.account.startPasskeyRegistration({}, bearer(tokens.accessToken))).optionsJson);
    expect(again.excludeCredentials).toEqual([{ id: passkey!.passkeyId, type: 'public-key', transports: ['internal'] }]);
    expect(again.user.id).toBe(options.user.id);
  });

  test('with a username, only that user’s passkeys are allowed, and another user’s passkey is refused', async () => {
    const alice = await signedIn(server, 'alice');
    const bob = await signedIn(server, 'bob');
    const aliceDevice = new SoftAuthenticator(ORIGIN);
    const bobDevice = new SoftAuthenticator(ORIGIN);
    const alicePasskey = await addPasskey(server, alice.auth, aliceDevice);
    await addPasskey(server, bob.auth, bobDevice);
    const started = await server.auth.startPasskeyLogin({ username: 'ALICE' });
    expect(JSON.parse(started.optionsJson).allowCredentials).toEqual([{ id: alicePasskey.passkeyId, type: 'public-key', transports: ['internal'] }]);
    // Bob's passkey answering a ceremony started for alice.
    const answer = bobDevice.get(started.optionsJson, {}, bobDevice.credentials[0]);
    expect(await statusOf(server.auth.finishPasskeyLogin({ ceremonyId: started.ceremonyId, responseJson: answer }))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'passkey refused: this passkey is not registered here',
    });
    const tokens = await passkeyLogin(server, aliceDevice, {}, 'alice');
    expect(jwt.decode(tokens.accessToken)).toMatchObject({ sub: alice.userId });
  });

  // Each refused ceremony: one clear answer, counted like a failed login, an audit event with why.
  test.each<{ name: string; m: Misbehaviour; details: string; why: string }>([
    { name: 'another origin', m: { origin: 'https://evil.example' }, details: 'passkey refused: the response comes from an origin this server does not accept', why: 'origin' },
    { name: 'another RP id hash', m: { rpId: 'evil.example' }, details: 'passkey refused: the response is for another relying party (RP ID)', why: 'rp_id' },
    { name: 'no user verification', m: { uv: false }, details: 'passkey refused: the authenticator did not verify the user (UV); passkeys here need it', why: 'user_verification' },
    { name: 'a signature over other data', m: { badSignature: true }, details: 'passkey refused: the signature does not verify', why: 'signature' },
    { name: 'a counter that goes back', m: { counter: 1 }, details: 'passkey refused: the authenticator counter went backwards: this passkey may be cloned', why: 'counter' },
    { name: 'another challenge', m: { challenge: Buffer.alloc(32, 1).toString('base64url') }, details: 'passkey refused: the response answers another challenge', why: 'challenge' },
    { name: 'another user handle', m: { userHandle: Buffer.alloc(32, 2).toString('base64url') }, details: 'passkey refused: the passkey belongs to another user handle', why: 'user_handle' },
  ])('sign-in refused: $name', async ({ m, details, why }) => {
    const { auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    await addPasskey(server, auth, device);
    // One good sign-in first, so the counter has moved past 1.
    await passkeyLogin(server, device);
    expect(await statusOf(passkeyLogin(server, device, m))).toEqual({ code: status.UNAUTHENTICATED, details });
    expect(server.logs.events('passkey_login_refused')).toEqual([expect.objectContaining({ why })]);
    // The refusal used nothing up: the same passkey still signs in.
    await expect(passkeyLogin(server, device)).resolves.toMatchObject({ tokenType: 'Bearer' });
  });

  test('a ceremony is single use, expires in 5 minutes, and an unknown passkey is refused', async () => {
    const { auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    await addPasskey(server, auth, device);
    const started = await server.auth.startPasskeyLogin({ username: '' });
    const answer = device.get(started.optionsJson);
    await server.auth.finishPasskeyLogin({ ceremonyId: started.ceremonyId, responseJson: answer });
    const replay = { code: status.NOT_FOUND, details: 'no such ceremony, or it was used or has expired; start again' };
    expect(await statusOf(server.auth.finishPasskeyLogin({ ceremonyId: started.ceremonyId, responseJson: answer }))).toEqual(replay);
    const late = await server.auth.startPasskeyLogin({ username: '' });
    server.clock.advance(5 * 60_000 + 1);
    expect(await statusOf(server.auth.finishPasskeyLogin({ ceremonyId: late.ceremonyId, responseJson: device.get(late.optionsJson) }))).toEqual(replay);
    const stranger = new SoftAuthenticator(ORIGIN);
    stranger.create((await server.account.startPasskeyRegistration({}, (await signedIn(server, 'bob')).auth)).optionsJson);
    expect(await statusOf(passkeyLogin(server, stranger))).toEqual({ code: status.UNAUTHENTICATED, details: 'passkey refused: this passkey is not registered here' });
    expect(server.logs.events('passkey_login_refused').map((e) => e.why)).toEqual(['ceremony', 'ceremony', 'unknown_credential']);
    const metrics = await server.app.metrics.registry.metrics();
    expect(metrics).toMatch(/^auth_passkey_logins_total 1$/m);
    expect(metrics).toMatch(/^auth_passkey_logins_refused_total 3$/m);
    expect(metrics).toMatch(/^auth_rpc_calls_total\{method="\/auth.v1.AuthService\/FinishPasskeyLogin",code="NOT_FOUND"\} 2$/m);
  });

  test('bad input is INVALID_ARGUMENT and spends no ceremony', async () => {
    const { auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    await addPasskey(server, auth, device);
    const started = await server.auth.startPasskeyLogin({ username: '' });
    for (const [responseJson, details] of [
      ['', 'response_json is required'],
      ['{', 'response_json is not JSON'],
      ['{"id":"x","type":"public-key","response":{}}', 'response_json has no valid credential id'],
      ['[]', 'response_json is not a WebAuthn credential response (PublicKeyCredential.toJSON())'],
      ['x'.repeat(16 * 1024 + 1), 'response_json must be at most 16384 characters'],
    ] as const) {
      expect(await statusOf(server.auth.finishPasskeyLogin({ ceremonyId: started.ceremonyId, responseJson }))).toEqual({ code: status.INVALID_ARGUMENT, details });
    }
    const session = await server.auth.finishPasskeyLogin({ ceremonyId: started.ceremonyId, responseJson: device.get(started.optionsJson) });
    const reg = await server.account.startPasskeyRegistration({}, bearer(session.accessToken));
    expect(await statusOf(server.account.finishPasskeyRegistration({ ceremonyId: reg.ceremonyId, responseJson: new SoftAuthenticator(ORIGIN).create(reg.optionsJson).json, name: 'x'.repeat(65) }, bearer(session.accessToken)))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'name must be at most 64 printable characters',
    });
  });

  test('failed sign-ins are throttled like failed logins', async () => {
    const { auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    await addPasskey(server, auth, device);
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) codes.push((await statusOf(passkeyLogin(server, device, { badSignature: true }))).code);
    expect(codes.slice(0, 5)).toEqual(Array(5).fill(status.UNAUTHENTICATED));
    expect(codes.slice(5)).toContain(status.RESOURCE_EXHAUSTED);
  });

  test('StartPasskeyLogin is limited to 30 a minute from one address', async () => {
    const codes = [];
    for (let i = 0; i < 31; i++) codes.push(await server.auth.startPasskeyLogin({ username: '' }).then(() => status.OK, (e: { code: number }) => e.code));
    expect(codes).toEqual([...Array(30).fill(status.OK), status.RESOURCE_EXHAUSTED]);
    server.clock.advance(60_000);
    await expect(server.auth.startPasskeyLogin({ username: '' })).resolves.toBeDefined();
  });

  test('adding a passkey ends the other sessions; another session of the user cannot finish the ceremony', async () => {
    const { userId, auth } = await signedIn(server);
    const other = await server.auth.login({ username: 'alice', password: PASSWORD });
    const started = await server.account.startPasskeyRegistration({}, auth);
    const device = new SoftAuthenticator(ORIGIN);
    const made = device.create(started.optionsJson);
    expect(await statusOf(server.account.finishPasskeyRegistration({ ceremonyId: started.ceremonyId, responseJson: made.json, name: '' }, bearer(other.accessToken)))).toMatchObject({
      code: status.NOT_FOUND,
    });
    // That try spent the ceremony: start again.
    const passkey = await addPasskey(server, auth, new SoftAuthenticator(ORIGIN), '');
    expect(passkey.name).toBe('Passkey');
    expect(server.logs.events('passkey_added')).toEqual([expect.objectContaining({ userId, sessionsEnded: 1 })]);
    expect(await server.auth.validate({ accessToken: other.accessToken })).toMatchObject({ active: false });
    expect(await server.auth.validate({ accessToken: auth.metadata.get('authorization')[0]!.toString().slice(7) })).toMatchObject({ active: true });
  });

  test('with TOTP on, a password-only session can neither add nor delete a passkey; a TOTP session can', async () => {
    const { auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    const passkey = await addPasskey(server, auth, device);
    const enrolled = await server.account.enrollTotp({}, bearer((await passkeyLogin(server, device)).accessToken));
    const passkeySession = bearer((await passkeyLogin(server, device)).accessToken);
    await server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, server.clock.now()) }, passkeySession);
    server.clock.advance(30_000);
    // A stolen password-only token (Login now asks for a code; this one is from before).
    const old = await statusOf(server.account.startPasskeyRegistration({}, auth));
    expect(old.code).toBe(status.UNAUTHENTICATED);
    const mfa = await server.auth.login({ username: 'alice', password: PASSWORD });
    const totpSession = bearer((await server.auth.completeLogin({ mfaToken: mfa.mfaToken, code: rfc6238(enrolled.secret, server.clock.now()) })).accessToken);
    await addPasskey(server, totpSession, new SoftAuthenticator(ORIGIN), 'phone');
    server.clock.advance(30_000);
    expect(await statusOf(server.account.deletePasskey({ passkeyId: passkey.passkeyId, code: '' }, totpSession))).toMatchObject({ code: status.UNAUTHENTICATED, details: expect.stringContaining('code') });
    expect(await statusOf(server.account.deletePasskey({ passkeyId: passkey.passkeyId, code: '000000' === rfc6238(enrolled.secret, server.clock.now()) ? '111111' : '000000' }, totpSession))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'the code is not valid',
    });
    await server.account.deletePasskey({ passkeyId: passkey.passkeyId, code: rfc6238(enrolled.secret, server.clock.now()) }, totpSession);
    expect((await server.account.listPasskeys({}, totpSession)).passkeys.map((p) => p.name)).toEqual(['phone']);
    expect(await statusOf(passkeyLogin(server, device))).toMatchObject({ code: status.UNAUTHENTICATED });
  });

  test('without TOTP, deleting needs a passkey session; rename; another user’s passkey is NOT_FOUND', async () => {
    const { auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    const passkey = await addPasskey(server, auth, device);
    expect(await statusOf(server.account.deletePasskey({ passkeyId: passkey.passkeyId, code: '' }, auth))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'sign in with a passkey (or send a code of your TOTP factor) to delete one',
    });
    const bob = await signedIn(server, 'bob');
    expect((await statusOf(server.account.renamePasskey({ passkeyId: passkey.passkeyId, name: 'mine' }, bob.auth))).code).toBe(status.NOT_FOUND);
    expect((await statusOf(server.account.deletePasskey({ passkeyId: passkey.passkeyId, code: '' }, bob.auth))).code).toBe(status.NOT_FOUND);
    const session = bearer((await passkeyLogin(server, device)).accessToken);
    expect((await server.account.renamePasskey({ passkeyId: passkey.passkeyId, name: 'work laptop' }, session)).passkey!.name).toBe('work laptop');
    await server.account.deletePasskey({ passkeyId: passkey.passkeyId, code: '' }, session);
    expect((await server.account.listPasskeys({}, session)).passkeys).toEqual([]);
    expect(server.logs.events('passkey_deleted')).toEqual([expect.objectContaining({ passkeyId: passkey.passkeyId })]);
  });

  test('admins list and delete a user’s passkeys; ResetMfa removes them; the handle stays', async () => {
    const admin = await signedInAdmin(server);
    const { userId, auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    const first = await addPasskey(server, auth, device, 'one');
    const session = bearer((await passkeyLogin(server, device)).accessToken);
    await addPasskey(server, session, new SoftAuthenticator(ORIGIN), 'two');
    expect((await server.admin.listUserPasskeys({ userId }, admin)).passkeys.map((p) => p.name)).toEqual(['one', 'two']);
    await server.admin.deleteUserPasskey({ userId, passkeyId: first.passkeyId }, admin);
    expect((await server.admin.listUserPasskeys({ userId }, admin)).passkeys.map((p) => p.name)).toEqual(['two']);
    expect((await statusOf(server.admin.listUserPasskeys({ userId: 'usr_AAAAAAAAAAAAAAAAAAAAAA' }, admin))).code).toBe(status.NOT_FOUND);
    const handle = JSON.parse((await server.account.startPasskeyRegistration({}, session)).optionsJson).user.id;
    await server.admin.resetMfa({ userId }, admin);
    expect((await server.admin.listUserPasskeys({ userId }, admin)).passkeys).toEqual([]);
    expect(await statusOf(passkeyLogin(server, device))).toMatchObject({ code: status.UNAUTHENTICATED });
    const fresh = await server.auth.login({ username: 'alice', password: PASSWORD });
    expect(JSON.parse((await server.account.startPasskeyRegistration({}, bearer(fresh.accessToken))).optionsJson).user.id).toBe(handle);
  });

  test('a disabled user cannot sign in with a passkey; a credential belongs to one user', async () => {
    const admin = await signedInAdmin(server);
    const { userId, auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    await addPasskey(server, auth, device);
    await server.admin.disableUser({ userId }, admin);
    expect(await statusOf(passkeyLogin(server, device))).toEqual({ code: status.FAILED_PRECONDITION, details: 'account disabled' });
    await server.admin.enableUser({ userId }, admin);
    // Bob's authenticator claims alice's credential id for a key of its own.
    const bob = await signedIn(server, 'bob');
    const started = await server.account.startPasskeyRegistration({}, bob.auth);
    const made = new SoftAuthenticator(ORIGIN).create(started.optionsJson, { credentialId: device.credentials[0]!.id });
    expect(await statusOf(server.account.finishPasskeyRegistration({ ceremonyId: started.ceremonyId, responseJson: made.json, name: '' }, bob.auth))).toEqual({
      code: status.ALREADY_EXISTS,
      details: 'this passkey is registered already',
    });
    expect((await server.account.listPasskeys({}, bob.auth)).passkeys).toEqual([]);
    await expect(passkeyLogin(server, device)).resolves.toMatchObject({ tokenType: 'Bearer' });
  });
});

describe('passkeys: what a red-team run found', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer({ env: { ...ENV, AUTH_TRUSTED_PROXIES: 'loopback' } });
  });
  afterEach(async () => {
    await server.close();
  });
  const from = (address: string, token?: string) => {
    const options = token ? bearer(token) : { metadata: new Metadata() };
    options.metadata.set('x-forwarded-for', address);
    return options;
  };

  test('a password-only session cannot turn TOTP on for an account with passkeys (and so cannot then delete them)', async () => {
    const { auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    await addPasskey(server, auth, device);
    const enrolled = await server.account.enrollTotp({}, auth);
    const confirm = (a: ReturnType<typeof bearer>) => server.account.confirmTotp({ password: PASSWORD, enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, server.clock.now()) }, a);
    expect(await statusOf(confirm(auth))).toEqual({ code: status.UNAUTHENTICATED, details: 'this account has passkeys: sign in with one to turn TOTP on' });
    await expect(confirm(bearer((await passkeyLogin(server, device)).accessToken))).resolves.toMatchObject({ recoveryCodes: expect.any(Array) });
  });

  test('failures from many addresses against one passkey never lock its owner out', async () => {
    const { auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    const passkey = await addPasskey(server, auth, device);
    const bogus = JSON.stringify({ id: passkey.passkeyId, rawId: passkey.passkeyId, type: 'public-key', response: {} });
    for (let i = 0; i < 20; i++) await statusOf(server.auth.finishPasskeyLogin({ ceremonyId: 'x', responseJson: bogus }, from(`203.0.113.${i}`)));
    await expect(passkeyLogin(server, device)).resolves.toMatchObject({ tokenType: 'Bearer' });
  });

  test('ten users signing in at once through one address (a backend-for-frontend) are not throttled', async () => {
    const devices = [];
    for (let i = 0; i < 10; i++) {
      const { auth } = await signedIn(server, `user${i}`);
      const device = new SoftAuthenticator(ORIGIN);
      await addPasskey(server, auth, device);
      devices.push(device);
    }
    const signIns = await Promise.all(devices.map((d) => passkeyLogin(server, d)));
    expect(signIns.every((t) => t.tokenType === 'Bearer')).toBe(true);
  });

  test('StartPasskeyLogin counts an IPv6 /64 as one address; StartPasskeyRegistration is limited to 10 a minute a user', async () => {
    for (let i = 0; i < 30; i++) await server.auth.startPasskeyLogin({ username: '' }, from(`2001:db8:1:2::${i.toString(16)}`));
    expect((await statusOf(server.auth.startPasskeyLogin({ username: '' }, from('2001:db8:1:2::ffff')))).code).toBe(status.RESOURCE_EXHAUSTED);
    await expect(server.auth.startPasskeyLogin({ username: '' }, from('2001:db8:1:3::1'))).resolves.toBeDefined();
    const { auth } = await signedIn(server);
    for (let i = 0; i < 10; i++) await server.account.startPasskeyRegistration({}, auth);
    expect(await statusOf(server.account.startPasskeyRegistration({}, auth))).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/^too many passkey registrations started; retry in \d+ s$/) });
  });

  test('registering a passkey held already leaves it working; transports are the known ones only', async () => {
    const { auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    const passkey = await addPasskey(server, auth, device);
    const session = bearer((await passkeyLogin(server, device)).accessToken);
    const started = await server.account.startPasskeyRegistration({}, session);
    const again = new SoftAuthenticator(ORIGIN).create(started.optionsJson, { credentialId: device.credentials[0]!.id });
    expect(await statusOf(server.account.finishPasskeyRegistration({ ceremonyId: started.ceremonyId, responseJson: again.json, name: '' }, session))).toEqual({ code: status.ALREADY_EXISTS, details: 'this passkey is registered already' });
    await expect(passkeyLogin(server, device)).resolves.toMatchObject({ tokenType: 'Bearer' });
    const next = await server.account.startPasskeyRegistration({}, session);
    const made = new SoftAuthenticator(ORIGIN).create(next.optionsJson, { transports: ['usb', 'usb', 'x'.repeat(3000), '\u0000', 7, { a: 1 }, 'hybrid'] });
    const { passkey: kept } = await server.account.finishPasskeyRegistration({ ceremonyId: next.ceremonyId, responseJson: made.json, name: 'key' }, session);
    expect(kept!.transports).toEqual(['usb', 'hybrid']);
    expect(passkey.transports).toEqual(['internal']);
  });

  test('the audit why comes from the kind of refusal, not from text the client chose; names without controls or format characters', async () => {
    const { auth } = await signedIn(server);
    const device = new SoftAuthenticator(ORIGIN);
    const passkey = await addPasskey(server, auth, device);
    expect(await statusOf(passkeyLogin(server, device, { challenge: Buffer.from('Response counter value 0 was lower than expected 1').toString('base64url') }))).toMatchObject({ details: 'passkey refused: the response answers another challenge' });
    expect(server.logs.events('passkey_login_refused')).toEqual([expect.objectContaining({ why: 'challenge' })]);
    const session = bearer((await passkeyLogin(server, device)).accessToken);
    for (const name of ['evil\u202Etxt.exe', 'a\u2028b', 'x\u0085y', 'zero\u200Bwidth', 'e' + '\u0301'.repeat(200)]) {
      expect(await statusOf(server.account.renamePasskey({ passkeyId: passkey.passkeyId, name }, session))).toEqual({ code: status.INVALID_ARGUMENT, details: 'name must be at most 64 printable characters' });
    }
    expect((await server.account.renamePasskey({ passkeyId: passkey.passkeyId, name: 'Škoda café 🔑' }, session)).passkey!.name).toBe('Škoda café 🔑');
  });
});

describe('passkeys and roles', () => {
  test('a passkey sign-in gets the roles of AUTH_MFA_REQUIRED_ROLES; an account holds at most 10 passkeys', async () => {
    const server = await startTestServer({ env: { ...ENV, AUTH_MFA_REQUIRED_ROLES: 'admin' } });
    try {
      const { userId, auth } = await signedIn(server);
      await server.app.store.updateUser(userId, { roles: ['admin'] });
      const login = await server.auth.login({ username: 'alice', password: PASSWORD });
      expect(login.mfaEnrollmentRequired).toBe(true);
      expect(jwt.decode(login.accessToken)).toMatchObject({ roles: [] });
      const device = new SoftAuthenticator(ORIGIN);
      await addPasskey(server, auth, device);
      const tokens = await passkeyLogin(server, device);
      expect(jwt.decode(tokens.accessToken)).toMatchObject({ roles: ['admin'], amr: ['pop', 'mfa'] });
      const session = bearer(tokens.accessToken);
      for (let i = 2; i <= 10; i++) await addPasskey(server, session, new SoftAuthenticator(ORIGIN), `key ${i}`);
      expect(await statusOf(server.account.startPasskeyRegistration({}, session))).toEqual({ code: status.FAILED_PRECONDITION, details: 'an account holds at most 10 passkeys; delete one first' });
    } finally {
      await server.close();
    }
  });
});

describe('passkeys from Python: grpcio calls, examples/passkeys/authenticator.py answers', () => {
  test('register and sign in username-less, no JavaScript on the client side', async () => {
    const server = await startTestServer({ env: { AUTH_WEBAUTHN_RP_ID: 'localhost', AUTH_WEBAUTHN_ORIGINS: 'https://localhost' } });
    const keyfile = join(mkdtempSync(join(tmpdir(), 'passkey-')), 'dave.key');
    const authenticator = (ceremony: 'create' | 'get', optionsJson: string): string => {
      const run = spawnSync(SYSTEM_PYTHON, [join(__dirname, '..', '..', 'examples', 'passkeys', 'authenticator.py'), ceremony, 'https://localhost', keyfile], { input: optionsJson, encoding: 'utf8' });
      expect(run.stderr).toBe('');
      return run.stdout.trim();
    };
    try {
      const [, login] = await pythonCalls(server.address, [
        ['/auth.v1.AuthService/Register', { username: 'dave', password: PASSWORD }, ''],
        ['/auth.v1.AuthService/Login', { username: 'dave', password: PASSWORD }, ''],
      ]);
      const token = login!.response!.accessToken as string;
      const [start] = await pythonCalls(server.address, [['/auth.v1.AccountService/StartPasskeyRegistration', {}, token]]);
      const created = authenticator('create', start!.response!.optionsJson as string);
      const [finish] = await pythonCalls(server.address, [['/auth.v1.AccountService/FinishPasskeyRegistration', { ceremonyId: start!.response!.ceremonyId, responseJson: created, name: 'python' }, token]]);
      expect(finish).toMatchObject({ code: 'OK', response: { passkey: { name: 'python', transports: ['internal'] } } });
      const [begin] = await pythonCalls(server.address, [['/auth.v1.AuthService/StartPasskeyLogin', {}, '']]);
      const asserted = authenticator('get', begin!.response!.optionsJson as string);
      const [signedIn, replay] = await pythonCalls(server.address, [
        ['/auth.v1.AuthService/FinishPasskeyLogin', { ceremonyId: begin!.response!.ceremonyId, responseJson: asserted }, ''],
        ['/auth.v1.AuthService/FinishPasskeyLogin', { ceremonyId: begin!.response!.ceremonyId, responseJson: asserted }, ''],
      ]);
      expect(signedIn!.code).toBe('OK');
      expect(jwt.decode(signedIn!.response!.accessToken as string)).toMatchObject({ amr: ['pop', 'mfa'] });
      expect(replay).toEqual({ code: 'NOT_FOUND', details: 'no such ceremony, or it was used or has expired; start again' });
    } finally {
      await server.close();
    }
  });
});

describe('passkeys off', () => {
  test('without AUTH_WEBAUTHN_RP_ID every passkey RPC answers FAILED_PRECONDITION', async () => {
    const server = await startTestServer();
    try {
      const { auth } = await signedIn(server);
      const off = { code: status.FAILED_PRECONDITION, details: 'passkeys are not enabled on this server (AUTH_WEBAUTHN_RP_ID)' };
      expect(await statusOf(server.auth.startPasskeyLogin({ username: '' }))).toEqual(off);
      expect(await statusOf(server.auth.finishPasskeyLogin({ ceremonyId: 'pkc_AAAAAAAAAAAAAAAAAAAAAA', responseJson: '{}' }))).toEqual(off);
      expect(await statusOf(server.account.startPasskeyRegistration({}, auth))).toEqual(off);
    } finally {
      await server.close();
    }
  });
});

/** An admin signed in (the first user registered through a users file is simpler; here: Register then SetRoles by the kit). */
async function signedInAdmin(server: TestServer) {
  await server.auth.register({ username: 'root', password: PASSWORD });
  const root = await server.app.store.findUserByUsername('root');
  await server.app.store.updateUser(root!.id, { roles: ['admin'] });
  return bearer((await server.auth.login({ username: 'root', password: PASSWORD })).accessToken);
}
