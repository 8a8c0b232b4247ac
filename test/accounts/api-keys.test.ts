import { Metadata, status } from '@grpc/grpc-js';
import jwt from 'jsonwebtoken';
import { createAuthClient } from '../../src/sdk/client';
import { pythonCalls } from '../helpers/python-grpc';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';

const INVALID = { code: status.UNAUTHENTICATED, details: 'the API key is invalid, expired or revoked' };

describe('API keys over gRPC', () => {
  let server: TestServer;
  let admin: ReturnType<typeof bearer>;
  beforeEach(async () => {
    server = await startTestServer({ env: { AUTH_API_KEY_SECRET: 'k'.repeat(32), AUTH_TRUSTED_PROXIES: 'loopback' } });
    const { userId } = await server.auth.register({ username: 'root', password: PASSWORD });
    await server.app.store.updateUser(userId, { roles: ['admin'] });
    admin = bearer((await server.auth.login({ username: 'root', password: PASSWORD })).accessToken);
  });
  afterEach(async () => {
    await server.close();
  });

  async function user(name = 'alice', roles = ['reports', 'billing']) {
    const { userId } = await server.auth.register({ username: name, password: PASSWORD });
    await server.app.store.updateUser(userId, { roles });
    return { userId, auth: bearer((await server.auth.login({ username: name, password: PASSWORD })).accessToken) };
  }

  test('create, list, exchange: a token for the owner with the key’s roles, no refresh token, no second factor; revoke ends it at once', async () => {
    const { userId, auth } = await user();
    const made = await server.account.createApiKey({ name: 'ci', roles: ['reports'], expiresInSeconds: 3600 }, auth);
    expect(made.secret).toMatch(/^gak_[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{43}$/);
    expect(made.apiKey).toMatchObject({ ownerId: userId, name: 'ci', roles: ['reports'] });
    expect(made.secret).toContain(made.apiKey!.apiKeyId.slice(4));
    expect((await server.account.listApiKeys({}, auth)).apiKeys.map((k) => k.name)).toEqual(['ci']);
    const exchanged = await server.auth.exchangeApiKey({ apiKey: made.secret });
    expect(exchanged.expiresIn).toBe(900);
    expect(jwt.decode(exchanged.accessToken)).toMatchObject({ sub: userId, roles: ['reports'], api_key_id: made.apiKey!.apiKeyId, sid: made.apiKey!.apiKeyId, amr: [] });
    expect(await server.auth.validate({ accessToken: exchanged.accessToken })).toMatchObject({ active: true, roles: ['reports'] });
    expect((await statusOf(server.secure.stepUpPing({}, bearer(exchanged.accessToken)))).code).toBe(status.UNAUTHENTICATED);
    await server.account.revokeApiKey({ apiKeyId: made.apiKey!.apiKeyId }, auth);
    expect(await server.auth.validate({ accessToken: exchanged.accessToken })).toMatchObject({ active: false });
    expect(await statusOf(server.auth.exchangeApiKey({ apiKey: made.secret }))).toEqual(INVALID);
    expect(server.logs.events('api_key_created')).toHaveLength(1);
    expect(server.logs.events('api_key_revoked')).toHaveLength(1);
  });

  test('a token from an API key acts for its owner but manages nothing of the account: no new keys, factors, password or sessions', async () => {
    const { auth } = await user();
    const made = await server.account.createApiKey({ name: 'ci', roles: ['reports'], expiresInSeconds: 3600 }, auth);
    const token = bearer((await server.auth.exchangeApiKey({ apiKey: made.secret })).accessToken);
    await expect(server.secure.whoAmI({}, token)).resolves.toMatchObject({ username: 'alice' });
    const refused = { code: status.PERMISSION_DENIED, details: 'a token from an API key cannot manage the account: sign in' };
    expect(await statusOf(server.account.createApiKey({ name: 'more', roles: [], expiresInSeconds: 3600 }, token))).toEqual(refused);
    expect(await statusOf(server.account.listApiKeys({}, token))).toEqual(refused);
    expect(await statusOf(server.account.changePassword({ currentPassword: PASSWORD, newPassword: 'a brand new password, long enough' }, token))).toEqual(refused);
    expect(await statusOf(server.account.enrollTotp({}, token))).toEqual(refused);
    expect(await statusOf(server.account.revokeOtherSessions({}, token))).toEqual(refused);
  });

  test('what a red-team run found: re-enabling, revoke-all, AdminService, max_age, lockout by a known id', async () => {
    const { userId, auth } = await user();
    const made = await server.account.createApiKey({ name: 'ci', roles: ['reports'], expiresInSeconds: 3600 }, auth);
    const token = (await server.auth.exchangeApiKey({ apiKey: made.secret })).accessToken;
    // Disabled, then enabled again: the key and its token stay dead.
    await server.admin.disableUser({ userId }, admin);
    await server.admin.enableUser({ userId }, admin);
    expect(await server.auth.validate({ accessToken: token })).toMatchObject({ active: false });
    expect(await statusOf(server.auth.exchangeApiKey({ apiKey: made.secret }))).toEqual(INVALID);
    // Revoke-all (after a restore, a leak) ends keys too.
    const fresh = bearer((await server.auth.login({ username: 'alice', password: PASSWORD })).accessToken);
    const second = await server.account.createApiKey({ name: 'ci2', roles: [], expiresInSeconds: 3600 }, fresh);
    await server.admin.revokeUserSessions({ userId }, admin);
    expect(await statusOf(server.auth.exchangeApiKey({ apiKey: second.secret }))).toEqual(INVALID);
    // An admin's key: its token cannot use AdminService (it could make credentials outliving the key).
    const rootKey = await server.account.createApiKey({ name: 'root', roles: ['admin'], expiresInSeconds: 3600 }, admin);
    const rootToken = bearer((await server.auth.exchangeApiKey({ apiKey: rootKey.secret })).accessToken);
    expect(await statusOf(server.admin.createServiceAccount({ name: 'backdoor', roles: ['admin'] }, rootToken))).toEqual({ code: status.PERMISSION_DENIED, details: 'a token from an API key cannot use AdminService: sign in' });
    // auth_time is the key's making, not the exchange.
    server.clock.advance(600_000);
    const late = jwt.decode((await server.auth.exchangeApiKey({ apiKey: rootKey.secret })).accessToken) as { auth_time: number; iat: number };
    expect(late.iat - late.auth_time).toBe(600);
    // Failures from other addresses naming the key's id never lock its holder out.
    const forged = `gak_${rootKey.apiKey!.apiKeyId.slice(4)}_${'A'.repeat(43)}`;
    const from = (address: string) => {
      const m = new Metadata();
      m.set('x-forwarded-for', address);
      return { metadata: m };
    };
    for (let i = 0; i < 12; i++) await statusOf(server.auth.exchangeApiKey({ apiKey: forged }, from(`198.51.100.${i}`)));
    await expect(server.auth.exchangeApiKey({ apiKey: rootKey.secret })).resolves.toMatchObject({ expiresIn: 900 });
  });

  test('roles: only the caller’s; a role taken from the owner leaves the key’s tokens at the next call', async () => {
    const { userId, auth } = await user();
    expect(await statusOf(server.account.createApiKey({ name: 'x', roles: ['admin'], expiresInSeconds: 60 }, auth))).toEqual({
      code: status.PERMISSION_DENIED,
      details: 'an API key can carry only roles its owner holds (not: admin)',
    });
    const made = await server.account.createApiKey({ name: 'ci', roles: ['reports', 'billing'], expiresInSeconds: 3600 }, auth);
    const token = (await server.auth.exchangeApiKey({ apiKey: made.secret })).accessToken;
    await server.admin.setRoles({ userId, roles: ['billing'] }, admin);
    expect(await server.auth.validate({ accessToken: token })).toMatchObject({ active: true, roles: ['billing'] });
    expect(jwt.decode((await server.auth.exchangeApiKey({ apiKey: made.secret })).accessToken)).toMatchObject({ roles: ['billing'] });
  });

  test.each([
    { name: 'disabled', act: async (s: TestServer, userId: string, a: ReturnType<typeof bearer>) => s.admin.disableUser({ userId }, a) },
    { name: 'deleted', act: async (s: TestServer, userId: string, a: ReturnType<typeof bearer>) => s.admin.deleteUser({ userId }, a) },
    { name: 'given a new password', act: async (s: TestServer, userId: string, a: ReturnType<typeof bearer>) => s.admin.setPassword({ userId, newPassword: 'a brand new password, long enough' }, a) },
  ])('a key dies at once with its owner $name', async ({ act }) => {
    const { userId, auth } = await user();
    const made = await server.account.createApiKey({ name: 'ci', roles: [], expiresInSeconds: 3600 }, auth);
    const token = (await server.auth.exchangeApiKey({ apiKey: made.secret })).accessToken;
    server.clock.advance(1000);
    await act(server, userId, admin);
    expect(await server.auth.validate({ accessToken: token })).toMatchObject({ active: false });
    expect(await statusOf(server.auth.exchangeApiKey({ apiKey: made.secret }))).toEqual(INVALID);
  });

  test('expiry: required, capped, and the key stops at its end; tokens never outlive it', async () => {
    const { auth } = await user();
    expect((await statusOf(server.account.createApiKey({ name: 'x', roles: [], expiresInSeconds: 0 }, auth))).code).toBe(status.INVALID_ARGUMENT);
    expect(await statusOf(server.account.createApiKey({ name: 'x', roles: [], expiresInSeconds: 366 * 86_400 }, auth))).toEqual({ code: status.INVALID_ARGUMENT, details: 'expires_in_seconds must be at most 31536000 (AUTH_API_KEY_MAX_TTL)' });
    const made = await server.account.createApiKey({ name: 'short', roles: [], expiresInSeconds: 120 }, auth);
    expect((await server.auth.exchangeApiKey({ apiKey: made.secret })).expiresIn).toBe(120);
    server.clock.advance(121_000);
    expect(await statusOf(server.auth.exchangeApiKey({ apiKey: made.secret }))).toEqual(INVALID);
  });

  test('the owner is the caller or an admin’s explicit target; service accounts get keys from an admin', async () => {
    const alice = await user('alice');
    const bob = await user('bob');
    const made = await server.account.createApiKey({ name: 'mine', roles: [], expiresInSeconds: 60 }, alice.auth);
    expect((await statusOf(server.account.revokeApiKey({ apiKeyId: made.apiKey!.apiKeyId }, bob.auth))).code).toBe(status.NOT_FOUND);
    expect((await server.account.listApiKeys({}, bob.auth)).apiKeys).toEqual([]);
    const { serviceAccount } = await server.admin.createServiceAccount({ name: 'reporter', roles: ['reports'] }, admin);
    const key = await server.admin.createServiceAccountApiKey({ serviceAccountId: serviceAccount!.serviceAccountId, name: 'cron', roles: ['reports'], expiresInSeconds: 3600 }, admin);
    expect(jwt.decode((await server.auth.exchangeApiKey({ apiKey: key.secret })).accessToken)).toMatchObject({ sub: serviceAccount!.serviceAccountId, roles: ['reports'] });
    expect((await server.admin.listApiKeys({ ownerId: serviceAccount!.serviceAccountId }, admin)).apiKeys.map((k) => k.name)).toEqual(['cron']);
    await server.admin.revokeApiKey({ apiKeyId: key.apiKey!.apiKeyId }, admin);
    expect(await statusOf(server.auth.exchangeApiKey({ apiKey: key.secret }))).toEqual(INVALID);
    expect((await statusOf(server.admin.createServiceAccountApiKey({ serviceAccountId: alice.userId, name: 'x', roles: [], expiresInSeconds: 60 }, admin))).code).toBe(status.NOT_FOUND);
  });

  test('a forged or altered secret is refused alike, failures are throttled, and the limit per owner holds', async () => {
    const { auth } = await user();
    const made = await server.account.createApiKey({ name: 'ci', roles: [], expiresInSeconds: 3600 }, auth);
    const altered = made.secret.slice(0, -1) + (made.secret.endsWith('A') ? 'B' : 'A');
    for (const apiKey of ['', 'gak_x', altered, `gak_${'A'.repeat(22)}_${'A'.repeat(43)}`]) expect(await statusOf(server.auth.exchangeApiKey({ apiKey }))).toEqual(INVALID);
    const codes = [];
    for (let i = 0; i < 8; i++) codes.push((await statusOf(server.auth.exchangeApiKey({ apiKey: altered }))).code);
    expect(codes).toContain(status.RESOURCE_EXHAUSTED);
    for (let i = 1; i < 20; i++) await server.account.createApiKey({ name: `k${i}`, roles: [], expiresInSeconds: 60 }, auth);
    expect(await statusOf(server.account.createApiKey({ name: 'one too many', roles: [], expiresInSeconds: 60 }, auth))).toMatchObject({ code: status.FAILED_PRECONDITION });
  });

  test('SDK: createAuthClient(address, { apiKey }) exchanges once for concurrent callers, and again before the token expires', async () => {
    const { auth } = await user();
    const made = await server.account.createApiKey({ name: 'sdk', roles: ['reports'], expiresInSeconds: 3600 }, auth);
    const client = createAuthClient(server.address, { apiKey: made.secret });
    try {
      const session = client.apiKeySession({ clock: server.clock });
      const first = await Promise.all(Array.from({ length: 10 }, () => session.accessToken()));
      expect(new Set(first).size).toBe(1);
      expect(server.logs.events('api_key_exchanged')).toHaveLength(1);
      expect(client.apiKeySession()).toBe(session);
      expect((await client.secure.whoAmI({}, { metadata: bearerOf(first[0]!) })).roles).toEqual(['reports']);
      server.clock.advance(900_000 - 29_000);
      const second = await session.accessToken();
      expect(second).not.toBe(first[0]);
      expect(server.logs.events('api_key_exchanged')).toHaveLength(2);
      expect(() => createAuthClient(server.address).apiKeySession()).toThrow('createAuthClient(address, { apiKey }) first');
    } finally {
      client.close();
    }
  });
});

describe('API keys and AUTH_MFA_REQUIRED_ROLES', () => {
  test('a key can never carry a role that needs a second factor, whatever the owner holds', async () => {
    const server = await startTestServer({ env: { AUTH_API_KEY_SECRET: 'k'.repeat(32), AUTH_MFA_REQUIRED_ROLES: 'ops' } });
    try {
      const { userId } = await server.auth.register({ username: 'olga', password: PASSWORD });
      await server.app.store.updateUser(userId, { roles: ['ops', 'reports'] });
      const auth = bearer((await server.auth.login({ username: 'olga', password: PASSWORD })).accessToken);
      expect(await statusOf(server.account.createApiKey({ name: 'x', roles: ['ops'], expiresInSeconds: 60 }, auth))).toEqual({
        code: status.PERMISSION_DENIED,
        details: 'an API key has no second factor, so it cannot carry ops (AUTH_MFA_REQUIRED_ROLES)',
      });
      const made = await server.account.createApiKey({ name: 'y', roles: ['reports'], expiresInSeconds: 60 }, auth);
      expect(jwt.decode((await server.auth.exchangeApiKey({ apiKey: made.secret })).accessToken)).toMatchObject({ roles: ['reports'] });
    } finally {
      await server.close();
    }
  });
});

describe('API keys from Python grpcio', () => {
  test('create with a bearer token, exchange, call with the exchanged token, revoke: a C-core client end to end', async () => {
    const server = await startTestServer({ env: { AUTH_API_KEY_SECRET: 'k'.repeat(32) } });
    try {
      const [, login] = await pythonCalls(server.address, [
        ['/auth.v1.AuthService/Register', { username: 'python-user', password: PASSWORD }, ''],
        ['/auth.v1.AuthService/Login', { username: 'python-user', password: PASSWORD }, ''],
      ]);
      const token = login!.response!.accessToken as string;
      const [made] = await pythonCalls(server.address, [['/auth.v1.AccountService/CreateApiKey', { name: 'python', roles: [], expiresInSeconds: 600 }, token]]);
      const secret = made!.response!.secret as string;
      const apiKeyId = (made!.response!.apiKey as { apiKeyId: string }).apiKeyId;
      const [exchanged] = await pythonCalls(server.address, [['/auth.v1.AuthService/ExchangeApiKey', { apiKey: secret }, '']]);
      const access = exchanged!.response!.accessToken as string;
      const [who, revoked, again] = await pythonCalls(server.address, [
        ['/auth.v1.SecureService/WhoAmI', {}, access],
        ['/auth.v1.AccountService/RevokeApiKey', { apiKeyId }, token],
        ['/auth.v1.AuthService/ExchangeApiKey', { apiKey: secret }, ''],
      ]);
      expect(who).toMatchObject({ code: 'OK', response: { username: 'python-user' } });
      expect(revoked!.code).toBe('OK');
      expect(again).toEqual({ code: 'UNAUTHENTICATED', details: 'the API key is invalid, expired or revoked' });
      expect(server.logs.text).not.toContain(secret.slice(-43));
    } finally {
      await server.close();
    }
  });
});

function bearerOf(token: string) {
  return bearer(token).metadata;
}
