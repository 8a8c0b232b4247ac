import { create } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { AdminService } from '../../gen/auth/v1/admin_pb';
import { InactiveReason } from '../../gen/auth/v1/auth_pb';
import { UserOrigin } from '../../gen/auth/v1/resources_pb';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';

const NEW_PASSWORD = 'an entirely new passphrase';

/** A server with an admin (from the store) and two plain users, each logged in once. */
async function setup() {
  const server = await startTestServer();
  const root = await server.auth.register({ username: 'root', password: PASSWORD });
  await server.app.store.updateUser(root.userId, { roles: ['admin'] });
  await server.auth.register({ username: 'alice', password: PASSWORD });
  await server.auth.register({ username: 'bob', password: PASSWORD });
  const login = (username: string, password = PASSWORD) => server.auth.login({ username, password });
  const admin = await login('root');
  return { server, login, admin: bearer(admin.accessToken), adminId: root.userId };
}

const idOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; sid: string; roles: string[] };

describe('AccountService: the caller’s own account', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  let server: TestServer;
  beforeEach(async () => {
    s = await setup();
    server = s.server;
  });
  afterEach(() => server.close());

  test('GetAccount: id, name, roles and times; never a hash', async () => {
    const tokens = await s.login('alice');
    const { user } = await server.account.getAccount({}, bearer(tokens.accessToken));
    expect(user).toMatchObject({ userId: idOf(tokens.accessToken).sub, username: 'alice', roles: [], disabled: false, origin: UserOrigin.API });
    expect(user!.createdAt).toBeDefined();
    expect(user!.passwordChangedAt).toBeDefined();
    expect(JSON.stringify(user, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).not.toContain('argon2');
    expect(await statusOf(server.account.getAccount({}))).toEqual({ code: status.UNAUTHENTICATED, details: 'missing bearer token' });
  });

  test('ChangePassword: the current password is checked, the policy applies, other sessions end, this one stays', async () => {
    const here = await s.login('alice');
    const elsewhere = await s.login('alice');
    const md = bearer(here.accessToken);
    expect(await statusOf(server.account.changePassword({ currentPassword: 'not my password at all', newPassword: NEW_PASSWORD }, md))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'invalid username or password',
    });
    expect(await statusOf(server.account.changePassword({ currentPassword: PASSWORD, newPassword: 'short' }, md))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'password must be at least 15 characters',
    });
    expect(await statusOf(server.account.changePassword({ currentPassword: PASSWORD, newPassword: 'passwordpassword' }, md))).toEqual({ code: status.INVALID_ARGUMENT, details: 'password is too common; choose another' });
    await server.account.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, md);
    expect(await server.auth.validate({ accessToken: elsewhere.accessToken })).toMatchObject({ active: false, reason: InactiveReason.REVOKED });
    expect(await statusOf(server.auth.refresh({ refreshToken: elsewhere.refreshToken }))).toMatchObject({ code: status.UNAUTHENTICATED });
    expect((await server.auth.validate({ accessToken: here.accessToken })).active).toBe(true);
    await expect(server.auth.refresh({ refreshToken: here.refreshToken })).resolves.toBeDefined();
    expect(await statusOf(s.login('alice'))).toMatchObject({ code: status.UNAUTHENTICATED });
    await expect(s.login('alice', NEW_PASSWORD)).resolves.toBeDefined();
    expect(server.logs.entries).toContainEqual(expect.objectContaining({ event: 'password_changed', userId: idOf(here.accessToken).sub }));
  });

  test('ChangePassword: wrong current passwords are throttled like logins', async () => {
    const md = bearer((await s.login('alice')).accessToken);
    for (let i = 0; i < 5; i++) {
      expect((await statusOf(server.account.changePassword({ currentPassword: `wrong password number ${i}`, newPassword: NEW_PASSWORD }, md))).code).toBe(status.UNAUTHENTICATED);
    }
    expect(await statusOf(server.account.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, md))).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
  });

  test('ListSessions: the caller’s live sessions, newest first, with address, agent and which is current', async () => {
    const first = await s.login('alice');
    server.clock.advance(1000);
    const second = await s.login('alice');
    await s.login('bob');
    const { sessions } = await server.account.listSessions({}, bearer(first.accessToken));
    expect(sessions.map((x) => x.sessionId)).toEqual([idOf(second.accessToken).sid, idOf(first.accessToken).sid]);
    expect(sessions.map((x) => x.current)).toEqual([false, true]);
    expect(sessions[0]).toMatchObject({ clientAddress: '127.0.0.1', userAgent: expect.stringContaining('grpc-node-js') });
  });

  test('RevokeSession: ends one own session; an unknown one and another user’s get the same NOT_FOUND', async () => {
    const mine = await s.login('alice');
    const other = await s.login('alice');
    const bobs = await s.login('bob');
    const md = bearer(mine.accessToken);
    const notFound = { code: status.NOT_FOUND, details: 'session not found' };
    expect(await statusOf(server.account.revokeSession({ sessionId: idOf(bobs.accessToken).sid }, md))).toEqual(notFound);
    expect(await statusOf(server.account.revokeSession({ sessionId: 'ses_AAAAAAAAAAAAAAAAAAAAAA' }, md))).toEqual(notFound);
    expect(await statusOf(server.account.revokeSession({ sessionId: 'nonsense' }, md))).toEqual(notFound);
    expect((await server.auth.validate({ accessToken: bobs.accessToken })).active).toBe(true);
    await server.account.revokeSession({ sessionId: idOf(other.accessToken).sid }, md);
    expect((await server.auth.validate({ accessToken: other.accessToken })).active).toBe(false);
    expect((await server.auth.validate({ accessToken: mine.accessToken })).active).toBe(true);
  });

  test('RevokeOtherSessions: sign out everywhere else', async () => {
    const here = await s.login('alice');
    const others = [await s.login('alice'), await s.login('alice')];
    await server.account.revokeOtherSessions({}, bearer(here.accessToken));
    for (const o of others) expect((await server.auth.validate({ accessToken: o.accessToken })).active).toBe(false);
    expect((await server.account.listSessions({}, bearer(here.accessToken))).sessions.map((x) => x.current)).toEqual([true]);
  });
});

describe('AdminService', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  let server: TestServer;
  beforeEach(async () => {
    s = await setup();
    server = s.server;
  });
  afterEach(() => server.close());

  const userId = async (username: string) => (await server.admin.getUser({ username }, s.admin)).user!.userId;

  test('every AdminService RPC refuses a caller without the admin role, and one without a token', async () => {
    const plain = bearer((await s.login('alice')).accessToken);
    for (const method of AdminService.methods) {
      const call = (server.admin as unknown as Record<string, (req: object, o?: object) => Promise<unknown>>)[method.localName]!;
      const request = create(method.input, {} as never);
      expect({ method: method.name, ...(await statusOf(call(request, plain))) }).toEqual({ method: method.name, code: status.PERMISSION_DENIED, details: 'requires role admin' });
      expect({ method: method.name, ...(await statusOf(call(request))) }).toEqual({ method: method.name, code: status.UNAUTHENTICATED, details: 'missing bearer token' });
    }
  });

  test('CreateUser, GetUser by id and by name; a taken name is ALREADY_EXISTS; the policy applies', async () => {
    const { user } = await server.admin.createUser({ username: 'Carol', password: PASSWORD, roles: ['ops', 'viewer'] }, s.admin);
    expect(user).toMatchObject({ username: 'carol', roles: ['ops', 'viewer'], disabled: false });
    expect((await server.admin.getUser({ userId: user!.userId }, s.admin)).user).toEqual(user);
    expect((await server.admin.getUser({ username: 'CAROL' }, s.admin)).user).toEqual(user);
    expect(await statusOf(server.admin.createUser({ username: 'carol', password: PASSWORD, roles: [] }, s.admin))).toEqual({ code: status.ALREADY_EXISTS, details: 'username is already taken' });
    expect((await statusOf(server.admin.createUser({ username: 'dave', password: 'short', roles: [] }, s.admin))).code).toBe(status.INVALID_ARGUMENT);
    expect(await statusOf(server.admin.createUser({ username: 'dave', password: PASSWORD, roles: ['Not A Role'] }, s.admin))).toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(s.login('carol')).resolves.toBeDefined();
    expect(await statusOf(server.admin.getUser({ userId: 'usr_AAAAAAAAAAAAAAAAAAAAAA' }, s.admin))).toEqual({ code: status.NOT_FOUND, details: 'user not found' });
    expect(await statusOf(server.admin.getUser({}, s.admin))).toEqual({ code: status.INVALID_ARGUMENT, details: 'give exactly one of user_id and username' });
    expect(server.logs.entries).toContainEqual(expect.objectContaining({ event: 'user_created', userId: user!.userId, actorId: s.adminId }));
  });

  test('ListUsers: stable username order, opaque tokens, prefixes, at most 1,000 a page', async () => {
    for (let i = 0; i < 25; i++) await server.app.store.createUser({ id: `usr_${String(i).padStart(21, 'A')}A`, username: `user${String(i).padStart(2, '0')}`, passwordHash: 'x', roles: [], disabled: false, origin: 'api' });
    const seen: string[] = [];
    let token = '';
    do {
      const page = await server.admin.listUsers({ pageSize: 7, pageToken: token }, s.admin);
      expect(page.users.length).toBeLessThanOrEqual(7);
      seen.push(...page.users.map((u) => u.username));
      token = page.nextPageToken;
    } while (token !== '');
    expect(seen).toEqual([...seen].sort());
    expect(seen).toHaveLength(28);
    const prefixed = await server.admin.listUsers({ usernamePrefix: 'USER1', pageSize: 5 }, s.admin);
    expect(prefixed.users.map((u) => u.username)).toEqual(['user10', 'user11', 'user12', 'user13', 'user14']);
    const rest = await server.admin.listUsers({ usernamePrefix: 'user1', pageSize: 5, pageToken: prefixed.nextPageToken }, s.admin);
    expect(rest.users.map((u) => u.username)).toEqual(['user15', 'user16', 'user17', 'user18', 'user19']);
    expect(rest.nextPageToken).toBe('');
    expect((await server.admin.listUsers({ pageSize: 100_000 }, s.admin)).users).toHaveLength(28);
    expect(await statusOf(server.admin.listUsers({ pageToken: 'not a token' }, s.admin))).toEqual({ code: status.INVALID_ARGUMENT, details: 'page_token is not valid' });
    expect(await statusOf(server.admin.listUsers({ usernamePrefix: 'x', pageToken: prefixed.nextPageToken }, s.admin))).toEqual({ code: status.INVALID_ARGUMENT, details: 'page_token belongs to another prefix' });
    expect(await statusOf(server.admin.listUsers({ pageSize: -1 }, s.admin))).toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  test('SetRoles takes effect at once: Validate, the interceptor, and the next Refresh', async () => {
    const tokens = await s.login('alice');
    const md = bearer(tokens.accessToken);
    expect(await statusOf(server.secure.adminPing({}, md))).toEqual({ code: status.PERMISSION_DENIED, details: 'requires role admin' });
    await server.admin.setRoles({ userId: await userId('alice'), roles: ['admin'] }, s.admin);
    expect(await server.auth.validate({ accessToken: tokens.accessToken })).toMatchObject({ active: true, roles: ['admin'] });
    await expect(server.secure.adminPing({}, md)).resolves.toMatchObject({ message: 'pong' });
    expect(await server.secure.whoAmI({}, md)).toMatchObject({ roles: ['admin'] });
    const next = await server.auth.refresh({ refreshToken: tokens.refreshToken });
    expect(idOf(next.accessToken).roles).toEqual(['admin']);
    await server.admin.setRoles({ userId: await userId('alice'), roles: [] }, s.admin);
    expect(await statusOf(server.secure.adminPing({}, md))).toEqual({ code: status.PERMISSION_DENIED, details: 'requires role admin' });
    expect(await statusOf(server.secure.adminPing({}, bearer(next.accessToken)))).toEqual({ code: status.PERMISSION_DENIED, details: 'requires role admin' });
    expect(server.logs.entries).toContainEqual(expect.objectContaining({ event: 'roles_changed', roles: ['admin'], actorId: s.adminId }));
  });

  test.each([
    { name: 'DisableUser', act: (sv: TestServer, id: string, md: object) => sv.admin.disableUser({ userId: id }, md) },
    { name: 'DeleteUser', act: (sv: TestServer, id: string, md: object) => sv.admin.deleteUser({ userId: id }, md) },
    { name: 'SetPassword', act: (sv: TestServer, id: string, md: object) => sv.admin.setPassword({ userId: id, newPassword: NEW_PASSWORD }, md) },
    { name: 'RevokeUserSessions', act: (sv: TestServer, id: string, md: object) => sv.admin.revokeUserSessions({ userId: id }, md) },
  ])('$name: once it returns, no access token of the user validates or passes, and no refresh token refreshes', async ({ act }) => {
    const sessions = [await s.login('alice'), await s.login('alice')];
    const bobs = await s.login('bob');
    await act(server, await userId('alice'), s.admin);
    for (const t of sessions) {
      expect(await server.auth.validate({ accessToken: t.accessToken })).toMatchObject({ active: false, reason: InactiveReason.REVOKED });
      expect(await statusOf(server.secure.whoAmI({}, bearer(t.accessToken)))).toEqual({ code: status.UNAUTHENTICATED, details: 'access token is not valid: revoked' });
      expect(await statusOf(server.auth.refresh({ refreshToken: t.refreshToken }))).toMatchObject({ code: status.UNAUTHENTICATED });
    }
    expect((await server.auth.validate({ accessToken: bobs.accessToken })).active).toBe(true);
  });

  test('a disabled user: the right password gets FAILED_PRECONDITION, a wrong one the usual answer; enable lets them in', async () => {
    const id = await userId('alice');
    expect((await server.admin.disableUser({ userId: id }, s.admin)).user).toMatchObject({ disabled: true });
    expect(await statusOf(s.login('alice'))).toEqual({ code: status.FAILED_PRECONDITION, details: 'account disabled' });
    expect(await statusOf(s.login('alice', 'a wrong password, long enough'))).toEqual({ code: status.UNAUTHENTICATED, details: 'invalid username or password' });
    await server.admin.enableUser({ userId: id }, s.admin);
    await expect(s.login('alice')).resolves.toBeDefined();
  });

  test('DeleteUser frees the name; SetPassword applies the policy; admins cannot lock themselves out', async () => {
    const id = await userId('alice');
    await server.admin.deleteUser({ userId: id }, s.admin);
    expect(await statusOf(server.admin.getUser({ userId: id }, s.admin))).toEqual({ code: status.NOT_FOUND, details: 'user not found' });
    expect(await statusOf(server.admin.deleteUser({ userId: id }, s.admin))).toEqual({ code: status.NOT_FOUND, details: 'user not found' });
    await expect(server.auth.register({ username: 'alice', password: PASSWORD })).resolves.toBeDefined();
    expect((await statusOf(server.admin.setPassword({ userId: await userId('bob'), newPassword: 'short' }, s.admin))).code).toBe(status.INVALID_ARGUMENT);
    for (const call of [server.admin.disableUser({ userId: s.adminId }, s.admin), server.admin.deleteUser({ userId: s.adminId }, s.admin), server.admin.setRoles({ userId: s.adminId, roles: [] }, s.admin)]) {
      expect((await statusOf(call)).code).toBe(status.FAILED_PRECONDITION);
    }
  });

  test('ListUserSessions and ResetLoginThrottle', async () => {
    const t = await s.login('bob');
    const sessions = await server.admin.listUserSessions({ userId: await userId('bob') }, s.admin);
    expect(sessions.sessions.map((x) => x.sessionId)).toEqual([idOf(t.accessToken).sid]);
    for (let i = 0; i < 5; i++) await statusOf(s.login('bob', `wrong password number ${i}`));
    expect((await statusOf(s.login('bob'))).code).toBe(status.RESOURCE_EXHAUSTED);
    await server.admin.resetLoginThrottle({ username: 'Bob' }, s.admin);
    await expect(s.login('bob')).resolves.toBeDefined();
  });
});

describe('races: role and account changes against refreshes and logins', () => {
  test('SetRoles and DisableUser concurrent with many Refresh and Login calls never leave a stale or living session', async () => {
    const { server, login, admin } = await setup();
    try {
      const id = (await server.admin.getUser({ username: 'alice' }, admin)).user!.userId;
      // Logins in flight count against their account (at most 5 at once), so the sessions are made in turn.
      let tokens: Array<{ accessToken: string; refreshToken: string }> = [];
      for (let i = 0; i < 20; i++) tokens.push(await login('alice'));
      // Round 1: roles change while 20 sessions refresh and 4 logins run.
      const refreshes = tokens.map((t) => server.auth.refresh({ refreshToken: t.refreshToken }));
      const logins = Array.from({ length: 4 }, () => login('alice'));
      await server.admin.setRoles({ userId: id, roles: ['ops'] }, admin);
      tokens = [...(await Promise.all(refreshes)), ...(await Promise.all(logins))];
      for (const t of tokens) expect(await server.auth.validate({ accessToken: t.accessToken })).toMatchObject({ active: true, roles: ['ops'] });
      // Round 2: disable while they refresh and log in again.
      const moreRefreshes = tokens.map((t) => server.auth.refresh({ refreshToken: t.refreshToken }).catch(() => undefined));
      const moreLogins = Array.from({ length: 4 }, () => login('alice').catch(() => undefined));
      await server.admin.disableUser({ userId: id }, admin);
      const survivors = [...(await Promise.all(moreRefreshes)), ...(await Promise.all(moreLogins)), ...tokens].filter((t) => t !== undefined);
      for (const t of survivors) {
        expect((await server.auth.validate({ accessToken: t!.accessToken })).active).toBe(false);
        expect((await statusOf(server.auth.refresh({ refreshToken: t!.refreshToken }))).code).toBe(status.UNAUTHENTICATED);
      }
    } finally {
      await server.close();
    }
  });
});

describe('AdminService: someone must stay able to administer the service', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    s = await setup();
  });
  afterEach(() => s.server.close());

  const LAST = { code: status.FAILED_PRECONDITION, details: 'that would leave no enabled admin; make another admin first' };
  const robot = async (name: string) => {
    const created = await s.server.admin.createServiceAccount({ name, roles: ['admin'] }, s.admin);
    const token = await s.server.auth.issueServiceToken({ clientId: created.clientId, clientSecret: created.clientSecret });
    return { id: created.clientId, as: bearer(token.accessToken) };
  };

  test('the red-team run: an admin service account demotes the last human admin, then cannot demote, disable or delete itself', async () => {
    const r = await robot('ops-bot');
    await s.server.admin.setRoles({ userId: s.adminId, roles: [] }, r.as);
    expect(await statusOf(s.server.admin.setServiceAccountRoles({ serviceAccountId: r.id, roles: [] }, r.as))).toEqual({ code: status.FAILED_PRECONDITION, details: 'an admin cannot take the admin role from themselves' });
    expect(await statusOf(s.server.admin.disableServiceAccount({ serviceAccountId: r.id }, r.as))).toEqual({ code: status.FAILED_PRECONDITION, details: 'an admin cannot disable themselves' });
    expect(await statusOf(s.server.admin.deleteServiceAccount({ serviceAccountId: r.id }, r.as))).toEqual({ code: status.FAILED_PRECONDITION, details: 'an admin cannot delete themselves' });
    await expect(s.server.secure.adminPing({}, r.as)).resolves.toMatchObject({ message: 'pong' });
  });

  test('two admins demoting each other at once: one wins; a refusal by the rule is a security event', async () => {
    // One after the other, an admin acting on another admin never meets the rule (the actor is an
    // enabled admin too): only calls at once can. Rounds until the rule, not the role check, refused one.
    const { user } = await s.server.admin.createUser({ username: 'carol', password: PASSWORD, roles: ['admin'] }, s.admin);
    const carol = bearer((await s.login('carol')).accessToken);
    const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code: number; details: string }) => `${e.code} ${e.details}`);
    let byRule = 0;
    for (let round = 0; round < 20 && byRule === 0; round++) {
      const outcomes = await Promise.all([codeOf(s.server.admin.setRoles({ userId: user!.userId, roles: [] }, s.admin)), codeOf(s.server.admin.setRoles({ userId: s.adminId, roles: [] }, carol))]);
      expect(outcomes.filter((o) => o === 'ok')).toHaveLength(1);
      const refused = outcomes.find((o) => o !== 'ok')!;
      // The loser is refused by the rule or, having lost the role a moment before, as a non-admin.
      expect([`${LAST.code} ${LAST.details}`, `${status.PERMISSION_DENIED} requires role admin`]).toContain(refused);
      if (refused.startsWith(`${LAST.code} `)) byRule++;
      if (outcomes[0] === 'ok') await s.server.admin.setRoles({ userId: user!.userId, roles: ['admin'] }, s.admin);
      else await s.server.admin.setRoles({ userId: s.adminId, roles: ['admin'] }, carol);
    }
    expect(byRule).toBe(1);
    const event = s.server.logs.entries.find((e) => e.event === 'last_admin_kept');
    expect(event).toMatchObject({ level: 'warn', change: 'roles', actorId: expect.stringMatching(/^usr_/), userId: expect.stringMatching(/^usr_/) });
    expect(event!.actorId).not.toBe(event!.userId);
  });
});
