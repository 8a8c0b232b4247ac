import { status } from '@grpc/grpc-js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import jwt from 'jsonwebtoken';
import { join } from 'node:path';
import { AccountService } from '../../gen/auth/v1/account_pb';
import { AdminService } from '../../gen/auth/v1/admin_pb';
import { AuthService, InactiveReason } from '../../gen/auth/v1/auth_pb';
import { SecureService } from '../../gen/auth/v1/secure_pb';
import { generateEcPem } from '../../src/core/keys';
import { writeUsersFile } from '../helpers/users';
import { createClient } from '../../src/grpc/client';
import { startProcess, type Running } from '../helpers/process';
import { describeWithPostgres } from '../helpers/postgres';
import { describeEachTopology } from '../helpers/redis-topologies';
import { rfc6238 } from '../helpers/rfc6238';
import { SoftAuthenticator } from '../helpers/authenticator';
import { bearer, PASSWORD, statusOf } from '../helpers/server';

/**
 * Real service processes (two, or three) sharing one store (Redis single, Sentinel or Cluster,
 * or PostgreSQL) and one key file.
 */
function sharedStoreSuite(deployment: () => { readonly env: Record<string, string> }, storeName: 'redis' | 'postgres', count: 2 | 3): void {
  const running: Running[] = [];
  let env: Record<string, string>;

  const start = async () => {
    const instance = await startProcess(env);
    running.push(instance);
    const address = String(instance.started.address);
    return { instance, auth: createClient(AuthService, address), secure: createClient(SecureService, address), admin: createClient(AdminService, address), account: createClient(AccountService, address) };
  };
  type Instance = Awaited<ReturnType<typeof start>>;
  let a: Instance;
  let b: Instance;
  let others: Instance[];
  const all = () => [a, b, ...others];

  beforeAll(async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'auth-multi-')), 'signing.pem');
    writeFileSync(keyFile, generateEcPem());
    const usersFile = await writeUsersFile({ root: ['admin'] });
    env = { ...deployment().env, AUTH_WEBAUTHN_RP_ID: 'example.test', AUTH_API_KEY_SECRET: 'an API key secret shared by both instances', AUTH_SIGNING_KEY_FILE: keyFile, AUTH_LOG_LEVEL: 'info', AUTH_USERS_FILE: usersFile };
    [a, b, ...others] = await Promise.all(Array.from({ length: count }, () => start()));
    for (const i of all()) expect(i.instance.started).toMatchObject({ store: storeName, kid: a.instance.started.kid });
    await a.auth.register({ username: 'alice', password: PASSWORD });
  });

  afterAll(async () => {
    for (const r of running) r.child.kill('SIGTERM');
    await Promise.all(running.map((r) => r.exit));
  });

  test('users registered on A log in on B', async () => {
    await expect(b.auth.login({ username: 'alice', password: PASSWORD })).resolves.toMatchObject({ tokenType: 'Bearer' });
    expect(await statusOf(b.auth.register({ username: 'alice', password: PASSWORD }))).toMatchObject({ code: status.ALREADY_EXISTS });
  });

  test('log in on A, refresh on B and A; re-use of the first token on A revokes the session everywhere', async () => {
    const t1 = await a.auth.login({ username: 'alice', password: PASSWORD });
    const t2 = await b.auth.refresh({ refreshToken: t1.refreshToken });
    const t3 = await a.auth.refresh({ refreshToken: t2.refreshToken });
    // t1 is two generations old: re-use even inside the reuse interval.
    expect(await statusOf(a.auth.refresh({ refreshToken: t1.refreshToken }))).toMatchObject({ code: status.UNAUTHENTICATED });
    expect(await b.auth.validate({ accessToken: t3.accessToken })).toMatchObject({ active: false, reason: InactiveReason.REVOKED });
    expect(await statusOf(a.secure.whoAmI({}, bearer(t3.accessToken)))).toEqual({ code: status.UNAUTHENTICATED, details: 'access token is not valid: revoked' });
    expect(await statusOf(b.auth.refresh({ refreshToken: t3.refreshToken }))).toMatchObject({ code: status.UNAUTHENTICATED });
    const warned = running.flatMap((r) => r.lines).filter((l) => l.event === 'refresh_token_reused');
    expect(warned).toHaveLength(1);
  });

  test('log out on B: Validate on A turns inactive at once', async () => {
    const t = await a.auth.login({ username: 'alice', password: PASSWORD });
    expect((await a.auth.validate({ accessToken: t.accessToken })).active).toBe(true);
    await b.auth.logout({ refreshToken: t.refreshToken });
    expect(await a.auth.validate({ accessToken: t.accessToken })).toMatchObject({ active: false, reason: InactiveReason.REVOKED });
  });

  test(`40 concurrent refreshes of one token over all ${count} instances: one rotation, one live successor`, async () => {
    const t = await a.auth.login({ username: 'alice', password: PASSWORD });
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => all()[i % count]!.auth.refresh({ refreshToken: t.refreshToken })));
    const successors = new Set(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.refreshToken] : [])));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(successors.size).toBe(1);
    const { sessionId } = await a.auth.validate({ accessToken: t.accessToken });
    const events = running.flatMap((r) => r.lines).filter((l) => l.sessionId === sessionId).map((l) => String(l.event));
    expect(events.filter((e) => e === 'session_refreshed')).toHaveLength(1);
    expect(events.filter((e) => e === 'refresh_retried')).toHaveLength(39);
    const [successor] = [...successors];
    await expect(b.auth.refresh({ refreshToken: successor! })).resolves.toBeDefined();
  });

  test('an instance killed with SIGKILL and restarted still knows every session', async () => {
    const t = await a.auth.login({ username: 'alice', password: PASSWORD });
    a.instance.child.kill('SIGKILL');
    expect(await a.instance.exit).toBeNull();
    a.auth.close();
    a.secure.close();
    a = await start();
    expect((await a.auth.validate({ accessToken: t.accessToken })).active).toBe(true);
    await expect(a.auth.refresh({ refreshToken: t.refreshToken })).resolves.toMatchObject({ tokenType: 'Bearer' });
  });

  test('both instances seeded the users file once: the file admin works on either', async () => {
    const onA = await a.auth.login({ username: 'root', password: PASSWORD });
    await expect(b.secure.adminPing({}, bearer(onA.accessToken))).resolves.toMatchObject({ message: 'pong' });
    const seeded = running.flatMap((r) => r.lines).filter((l) => l.event === 'file_user_seeded' && l.change === 'created');
    expect(seeded).toHaveLength(1);
  });

  test('a role change on A is enforced on B at the next call, and a disable on B ends sessions refreshing on both', async () => {
    const root = bearer((await a.auth.login({ username: 'root', password: PASSWORD })).accessToken);
    const { user } = await a.admin.createUser({ username: 'mallory', password: PASSWORD, roles: ['admin'] }, root);
    const tokens: Array<{ accessToken: string; refreshToken: string }> = [];
    for (let i = 0; i < 10; i++) tokens.push(await (i % 2 ? a : b).auth.login({ username: 'mallory', password: PASSWORD }));
    await expect(b.secure.adminPing({}, bearer(tokens[0]!.accessToken))).resolves.toBeDefined();
    await a.admin.setRoles({ userId: user!.userId, roles: [] }, root);
    expect(await statusOf(b.secure.adminPing({}, bearer(tokens[0]!.accessToken)))).toEqual({ code: status.PERMISSION_DENIED, details: 'requires role admin' });
    expect(await b.auth.validate({ accessToken: tokens[1]!.accessToken })).toMatchObject({ active: true, roles: [] });

    const racing = [
      ...tokens.map((t, i) => (i % 2 ? b : a).auth.refresh({ refreshToken: t.refreshToken }).catch(() => undefined)),
      ...Array.from({ length: 4 }, (_, i) => (i % 2 ? a : b).auth.login({ username: 'mallory', password: PASSWORD }).catch(() => undefined)),
    ];
    await b.admin.disableUser({ userId: user!.userId }, root);
    const ended = [...(await Promise.all(racing)), ...tokens].filter((t) => t !== undefined);
    for (const t of ended) {
      for (const instance of all()) {
        expect((await instance.auth.validate({ accessToken: t!.accessToken })).active).toBe(false);
        expect((await statusOf(instance.secure.whoAmI({}, bearer(t!.accessToken)))).code).toBe(status.UNAUTHENTICATED);
      }
      expect((await statusOf(a.auth.refresh({ refreshToken: t!.refreshToken }))).code).toBe(status.UNAUTHENTICATED);
    }
    expect(await statusOf(b.auth.login({ username: 'mallory', password: PASSWORD }))).toEqual({ code: status.FAILED_PRECONDITION, details: 'account disabled' });
  });

  test('ListUsers pages the same on both instances', async () => {
    const root = bearer((await a.auth.login({ username: 'root', password: PASSWORD })).accessToken);
    const first = await a.admin.listUsers({ pageSize: 1 }, root);
    const second = await b.admin.listUsers({ pageSize: 1, pageToken: first.nextPageToken }, root);
    expect(first.users).toHaveLength(1);
    expect(second.users[0]!.username > first.users[0]!.username).toBe(true);
  });

  test('service accounts across instances: an assertion used on A is refused on B; a revoke on B ends tokens on A', async () => {
    const root = bearer((await a.auth.login({ username: 'root', password: PASSWORD })).accessToken);
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const account = await a.admin.createServiceAccount({ name: 'reports', roles: ['admin'] }, root);
    await b.admin.addServiceAccountKey({ serviceAccountId: account.clientId, publicKeyJwk: JSON.stringify(publicKey.export({ format: 'jwk' })) }, root);
    const issuer = 'urn:grpc-auth:dev';
    const assertion = jwt.sign({ jti: 'only-once' }, privateKey, { algorithm: 'ES256', issuer: account.clientId, subject: account.clientId, audience: issuer, expiresIn: 60 });
    await expect(a.auth.issueServiceToken({ clientAssertion: assertion })).resolves.toBeDefined();
    expect(await statusOf(b.auth.issueServiceToken({ clientAssertion: assertion }))).toEqual({ code: status.UNAUTHENTICATED, details: 'client authentication failed' });
    const token = (await a.auth.issueServiceToken({ clientId: account.clientId, clientSecret: account.clientSecret })).accessToken;
    await expect(a.secure.adminPing({}, bearer(token))).resolves.toBeDefined();
    await b.admin.revokeServiceAccountSecret({ serviceAccountId: account.clientId, secretId: account.secretId }, root);
    expect(await statusOf(a.secure.adminPing({}, bearer(token)))).toEqual({ code: status.UNAUTHENTICATED, details: 'access token is not valid: revoked' });
    expect((await a.auth.validate({ accessToken: token })).active).toBe(false);
  });

  test('second factors across instances: a TOTP code used on A is refused on B; a reset code used on B is refused on A', async () => {
    const { userId } = await a.auth.register({ username: 'mfa-user', password: PASSWORD });
    const first = bearer((await a.auth.login({ username: 'mfa-user', password: PASSWORD })).accessToken);
    const enrolled = await a.account.enrollTotp({}, first);
    const { recoveryCodes } = await b.account.confirmTotp({ enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, Date.now()), password: PASSWORD }, first);
    // The confirming step is spent; the next step's code is accepted (one step of skew) once.
    const code = rfc6238(enrolled.secret, Date.now(), 1);
    const onA = (await a.auth.login({ username: 'mfa-user', password: PASSWORD })).mfaToken;
    const onB = (await b.auth.login({ username: 'mfa-user', password: PASSWORD })).mfaToken;
    const [first1, second1] = await Promise.allSettled([a.auth.completeLogin({ mfaToken: onA, code }), b.auth.completeLogin({ mfaToken: onB, code })]);
    expect([first1.status, second1.status].sort()).toEqual(['fulfilled', 'rejected']);
    const refused = (first1.status === 'rejected' ? first1 : second1) as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: status.UNAUTHENTICATED, details: 'the code is not valid' });

    const root = bearer((await a.auth.login({ username: 'root', password: PASSWORD })).accessToken);
    const reset = await a.admin.createPasswordResetCode({ userId }, root);
    const newPassword = 'a new password for the mfa user';
    // A recovery code stands in for the second factor; the same reset code then fails on the other instance.
    await b.auth.resetPassword({ username: 'mfa-user', code: reset.code, newPassword, mfaCode: recoveryCodes[0]! });
    expect(await statusOf(a.auth.resetPassword({ username: 'mfa-user', code: reset.code, newPassword: `${newPassword}!`, mfaCode: recoveryCodes[1]! }))).toMatchObject({ code: status.UNAUTHENTICATED });
    expect((await a.auth.login({ username: 'mfa-user', password: newPassword })).mfaRequired).toBe(true);
  });

  test('the factor across instances: confirming on B ends the sessions made on A; replacing it on A needs a code of it, which then works nowhere', async () => {
    await a.auth.register({ username: 'mfa-owner', password: PASSWORD });
    const early = await a.auth.login({ username: 'mfa-owner', password: PASSWORD });
    const owner = await b.auth.login({ username: 'mfa-owner', password: PASSWORD });
    const enrolled = await a.account.enrollTotp({}, bearer(owner.accessToken));
    const { recoveryCodes } = await b.account.confirmTotp({ enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, Date.now()), password: PASSWORD }, bearer(owner.accessToken));
    for (const i of [a, b]) {
      expect((await i.auth.validate({ accessToken: early.accessToken })).active).toBe(false);
      expect((await i.auth.validate({ accessToken: owner.accessToken })).active).toBe(true);
    }
    expect(await statusOf(a.auth.refresh({ refreshToken: early.refreshToken }))).toMatchObject({ code: status.UNAUTHENTICATED });

    // The owner's token alone (or with the password) cannot swap the factor, on either instance.
    const other = await a.account.enrollTotp({}, bearer(owner.accessToken));
    const otherCode = rfc6238(other.secret, Date.now());
    expect(await statusOf(b.account.confirmTotp({ enrollmentId: other.enrollmentId, code: otherCode, password: PASSWORD }, bearer(owner.accessToken)))).toMatchObject({ code: status.UNAUTHENTICATED, details: 'a current code of the second factor is required (from its app, or a recovery code)' });
    expect(await statusOf(a.account.disableTotp({ password: PASSWORD }, bearer(owner.accessToken)))).toMatchObject({ code: status.UNAUTHENTICATED });
    // With a recovery code it can; the old factor's recovery codes then work on neither instance.
    await a.account.confirmTotp({ enrollmentId: other.enrollmentId, code: otherCode, currentCode: recoveryCodes[0]!, password: PASSWORD }, bearer(owner.accessToken));
    expect(await statusOf(b.account.disableTotp({ password: PASSWORD, code: recoveryCodes[0]! }, bearer(owner.accessToken)))).toMatchObject({ code: status.UNAUTHENTICATED, details: 'the code is not valid' });
    const mfaToken = (await b.auth.login({ username: 'mfa-owner', password: PASSWORD })).mfaToken;
    expect(await statusOf(a.auth.completeLogin({ mfaToken, code: recoveryCodes[1]! }))).toMatchObject({ code: status.UNAUTHENTICATED, details: 'the code is not valid' });
  });

  test('passkeys across instances: registered on A, a ceremony started on B finished on A, its replay refused on B; a passkey deleted on B fails on A', async () => {
    await a.auth.register({ username: 'pia', password: PASSWORD });
    const login = await b.auth.login({ username: 'pia', password: PASSWORD });
    const device = new SoftAuthenticator('https://example.test');
    const reg = await b.account.startPasskeyRegistration({}, bearer(login.accessToken));
    const { passkey } = await a.account.finishPasskeyRegistration({ ceremonyId: reg.ceremonyId, responseJson: device.create(reg.optionsJson).json, name: 'key' }, bearer(login.accessToken));
    const started = await b.auth.startPasskeyLogin({ username: '' });
    const answer = device.get(started.optionsJson);
    const tokens = await a.auth.finishPasskeyLogin({ ceremonyId: started.ceremonyId, responseJson: answer });
    expect(await b.auth.validate({ accessToken: tokens.accessToken })).toMatchObject({ active: true, amr: ['pop', 'mfa'] });
    expect(await statusOf(b.auth.finishPasskeyLogin({ ceremonyId: started.ceremonyId, responseJson: answer }))).toMatchObject({ code: status.NOT_FOUND });
    await b.account.deletePasskey({ passkeyId: passkey!.passkeyId, code: '' }, bearer(tokens.accessToken));
    const again = await a.auth.startPasskeyLogin({ username: '' });
    expect(await statusOf(a.auth.finishPasskeyLogin({ ceremonyId: again.ceremonyId, responseJson: device.get(again.optionsJson) }))).toMatchObject({ code: status.UNAUTHENTICATED });
  });

  test('API keys across instances: made on A, exchanged on B; revoked on B, refused on A at once (and its token too)', async () => {
    await a.auth.register({ username: 'kai', password: PASSWORD });
    const auth = bearer((await a.auth.login({ username: 'kai', password: PASSWORD })).accessToken);
    const made = await a.account.createApiKey({ name: 'ci', roles: [], expiresInSeconds: 3600 }, auth);
    const token = (await b.auth.exchangeApiKey({ apiKey: made.secret })).accessToken;
    expect(await a.auth.validate({ accessToken: token })).toMatchObject({ active: true });
    await b.account.revokeApiKey({ apiKeyId: made.apiKey!.apiKeyId }, auth);
    expect(await a.auth.validate({ accessToken: token })).toMatchObject({ active: false });
    expect(await statusOf(a.auth.exchangeApiKey({ apiKey: made.secret }))).toMatchObject({ code: status.UNAUTHENTICATED });
  });

  test('two admins demoting each other at once on two instances: one wins, one is refused, an admin stays (three rounds)', async () => {
    const root = bearer((await a.auth.login({ username: 'root', password: PASSWORD })).accessToken);
    const p = (await a.admin.createUser({ username: 'admin-p', password: PASSWORD, roles: ['admin'] }, root)).user!.userId;
    const q = (await a.admin.createUser({ username: 'admin-q', password: PASSWORD, roles: ['admin'] }, root)).user!.userId;
    const tokenP = bearer((await a.auth.login({ username: 'admin-p', password: PASSWORD })).accessToken);
    const tokenQ = bearer((await b.auth.login({ username: 'admin-q', password: PASSWORD })).accessToken);
    // Only p and q stay admins: every other user and service account steps down.
    for (const u of (await a.admin.listUsers({ pageSize: 1000 }, tokenP)).users) if (u.userId !== p && u.userId !== q && u.roles.includes('admin')) await a.admin.setRoles({ userId: u.userId, roles: [] }, tokenP);
    for (const sa of (await a.admin.listServiceAccounts({ pageSize: 1000 }, tokenP)).serviceAccounts) if (sa.roles.includes('admin')) await a.admin.setServiceAccountRoles({ serviceAccountId: sa.serviceAccountId, roles: [] }, tokenP);
    for (let round = 0; round < 3; round++) {
      const outcomes = await Promise.all([
        a.admin.setRoles({ userId: q, roles: [] }, tokenP).then(() => 'ok', (e: { code: number; details: string }) => `${e.code} ${e.details}`),
        b.admin.setRoles({ userId: p, roles: [] }, tokenQ).then(() => 'ok', (e: { code: number; details: string }) => `${e.code} ${e.details}`),
      ]);
      expect(outcomes.filter((o) => o === 'ok')).toHaveLength(1);
      // The loser is refused by the rule or, having lost the role a moment before its call was checked, as a non-admin.
      expect([`${status.FAILED_PRECONDITION} that would leave no enabled admin; make another admin first`, `${status.PERMISSION_DENIED} requires role admin`]).toContain(outcomes.find((o) => o !== 'ok'));
      const winner = outcomes[0] === 'ok' ? tokenP : tokenQ;
      const standing = await Promise.all([p, q].map(async (userId) => (await a.admin.getUser({ userId }, winner)).user!.roles.includes('admin')));
      expect(standing.filter(Boolean)).toHaveLength(1);
      // The winner makes the other an admin again for the next round.
      if (outcomes[0] === 'ok') await a.admin.setRoles({ userId: q, roles: ['admin'] }, tokenP);
      else await b.admin.setRoles({ userId: p, roles: ['admin'] }, tokenQ);
    }
    await a.admin.setRoles({ userId: (await a.admin.getUser({ username: 'root' }, tokenP)).user!.userId, roles: ['admin'] }, tokenP);
  });
}

describeEachTopology('several instances on one Redis', (topology) => sharedStoreSuite(topology, 'redis', 2));

describeWithPostgres('three instances on one PostgreSQL', (pg) => {
  let url: string;
  beforeAll(async () => {
    url = await pg().createDatabase();
  });
  sharedStoreSuite(() => ({ env: { AUTH_DATABASE_URL: url } }), 'postgres', 3);
});
