import { status } from '@grpc/grpc-js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InactiveReason } from '../../gen/auth/v1/auth_pb';
import { bearer, PASSWORD, registerAndLogin, startTestServer, statusOf, type TestServer } from '../helpers/server';

describe('AuthService over a real grpc-js connection', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(() => server.close());

  test('walks Register → Login → WhoAmI → Refresh → Validate → Logout', async () => {
    const { userId } = await server.auth.register({ username: 'Alice', password: PASSWORD });
    expect(userId).toMatch(/^usr_[A-Za-z0-9_-]{22}$/);

    const login = await server.auth.login({ username: 'alice', password: PASSWORD });
    expect(login.tokenType).toBe('Bearer');
    expect(login.expiresIn).toBe(900);
    expect(login.refreshExpiresIn).toBe(14 * 86400);
    expect(login.refreshToken).toMatch(/^rt2_[A-Za-z0-9_-]{112}$/);

    const me = await server.secure.whoAmI({}, bearer(login.accessToken));
    expect(me).toMatchObject({ userId, username: 'alice', roles: [] });

    server.clock.advance(60_000);
    const refreshed = await server.auth.refresh({ refreshToken: login.refreshToken });
    expect(refreshed.refreshToken).not.toBe(login.refreshToken);
    expect(refreshed.accessToken).not.toBe(login.accessToken);

    const valid = await server.auth.validate({ accessToken: refreshed.accessToken });
    expect(valid).toMatchObject({ active: true, userId, username: 'alice', sessionId: me.sessionId, reason: InactiveReason.UNSPECIFIED });
    expect(Number(valid.expiresAt!.seconds) - Number(valid.issuedAt!.seconds)).toBe(900);
    expect(valid.tokenId).toMatch(/^[A-Za-z0-9_-]{22}$/);

    await server.auth.logout({ refreshToken: refreshed.refreshToken });
    const after = await server.auth.validate({ accessToken: refreshed.accessToken });
    expect(after).toMatchObject({ active: false, reason: InactiveReason.REVOKED, userId: '' });
    expect(await statusOf(server.secure.whoAmI({}, bearer(refreshed.accessToken)))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'access token is not valid: revoked',
    });
    expect(await statusOf(server.auth.refresh({ refreshToken: refreshed.refreshToken }))).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'refresh token is invalid, expired or revoked',
    });
  });

  describe('Register', () => {
    test.each([
      { name: 'empty username', username: '', password: PASSWORD, want: 'username is required' },
      { name: 'short username', username: 'al', password: PASSWORD, want: 'username must be 3 to 64 characters: letters, digits and . _ - @ +' },
      { name: 'username with space', username: 'al ice', password: PASSWORD, want: 'username must be 3 to 64 characters: letters, digits and . _ - @ +' },
      { name: 'username too long', username: 'a'.repeat(65), password: PASSWORD, want: 'username must be 3 to 64 characters: letters, digits and . _ - @ +' },
      { name: 'username over the byte cap', username: 'a'.repeat(300), password: PASSWORD, want: 'username must be at most 256 bytes' },
      { name: 'empty password', username: 'bob', password: '', want: 'password is required' },
      { name: 'short password', username: 'bob', password: 'short pass 14c', want: 'password must be at least 15 characters' },
      { name: 'password of 129 code points', username: 'bob', password: '😀'.repeat(129), want: 'password must be at most 128 characters' },
      { name: 'password over the byte cap', username: 'bob', password: 'x'.repeat(1025), want: 'password must be at most 1024 bytes' },
      { name: 'a common password', username: 'bob', password: 'PasswordPassword', want: 'password is too common; choose another' },
      { name: 'a common password in full width', username: 'bob', password: 'ｐａｓｓｗｏｒｄｐａｓｓｗｏｒｄ', want: 'password is too common; choose another' },
      { name: 'one character repeated', username: 'bob', password: 'z'.repeat(20), want: 'password is too common; choose another' },
      { name: 'the username as password', username: 'bobby.tables.long', password: 'Bobby.Tables.Long', want: 'password must not be the username' },
    ])('$name → INVALID_ARGUMENT', async ({ username, password, want }) => {
      expect(await statusOf(server.auth.register({ username, password }))).toEqual({ code: status.INVALID_ARGUMENT, details: want });
    });

    test('accepts 64 and 128 code points; counts code points after NFKC, not bytes', async () => {
      await expect(server.auth.register({ username: 'long', password: '😀😃'.repeat(64) })).resolves.toBeDefined();
      await expect(server.auth.register({ username: 'u64', password: 'pq'.repeat(32) })).resolves.toBeDefined();
      // U+FB01 (ﬁ ligature) normalises to "fi": 14 ligatures are 28 characters under NFKC.
      await expect(server.auth.register({ username: 'ligature', password: 'ﬁ'.repeat(14) })).resolves.toBeDefined();
      await expect(server.auth.login({ username: 'ligature', password: 'fi'.repeat(14) })).resolves.toBeDefined();
    });

    test('a taken username, in any case or width, is ALREADY_EXISTS', async () => {
      await server.auth.register({ username: 'carol', password: PASSWORD });
      for (const username of ['carol', 'CAROL', 'ｃａｒｏｌ']) {
        expect(await statusOf(server.auth.register({ username, password: PASSWORD }))).toEqual({
          code: status.ALREADY_EXISTS,
          details: 'username is already taken',
        });
      }
    });

    test('a deny-list file adds to the built-in list', async () => {
      const file = join(mkdtempSync(join(tmpdir(), 'denylist-')), 'list.txt');
      writeFileSync(file, 'tr0ub4dor&3 is my secret\n\n');
      const strict = await startTestServer({ env: { AUTH_PASSWORD_DENYLIST_FILE: file } });
      try {
        expect(await statusOf(strict.auth.register({ username: 'dave', password: 'TR0UB4DOR&3 is my secret' }))).toEqual({
          code: status.INVALID_ARGUMENT,
          details: 'password is too common; choose another',
        });
        await expect(strict.auth.register({ username: 'dave', password: 'a perfectly fine passphrase' })).resolves.toBeDefined();
      } finally {
        await strict.close();
      }
    });

    test('closed registration is FAILED_PRECONDITION', async () => {
      const closed = await startTestServer({ env: { AUTH_REGISTRATION: 'closed' } });
      try {
        expect(await statusOf(closed.auth.register({ username: 'dave', password: PASSWORD }))).toEqual({
          code: status.FAILED_PRECONDITION,
          details: 'registration is closed on this server',
        });
      } finally {
        await closed.close();
      }
    });
  });

  describe('Login', () => {
    beforeEach(() => server.auth.register({ username: 'erin', password: PASSWORD }));

    test.each([
      { name: 'wrong password', username: 'erin', password: 'not the password at all' },
      { name: 'unknown user', username: 'nobody', password: PASSWORD },
      { name: 'username that breaks the rules', username: 'no body', password: PASSWORD },
      { name: 'password longer than any account can have', username: 'erin', password: 'p'.repeat(200) },
    ])('$name → UNAUTHENTICATED with one message', async ({ username, password }) => {
      expect(await statusOf(server.auth.login({ username, password }))).toEqual({ code: status.UNAUTHENTICATED, details: 'invalid username or password' });
    });

    test.each([
      { name: 'empty username', username: '', password: PASSWORD, want: 'username is required' },
      { name: 'empty password', username: 'erin', password: '', want: 'password is required' },
      { name: 'oversized password', username: 'erin', password: 'x'.repeat(5000), want: 'password must be at most 1024 bytes' },
    ])('$name → INVALID_ARGUMENT', async ({ username, password, want }) => {
      expect(await statusOf(server.auth.login({ username, password }))).toEqual({ code: status.INVALID_ARGUMENT, details: want });
    });

    test('no truncation: a long password that differs only in its last character is refused', async () => {
      const long = 'a long passphrase that keeps going and going, '.repeat(2) + 'end';
      await server.auth.register({ username: 'frank', password: long });
      expect((await statusOf(server.auth.login({ username: 'frank', password: long.slice(0, -1) + 'x' }))).code).toBe(status.UNAUTHENTICATED);
      expect((await statusOf(server.auth.login({ username: 'frank', password: long.slice(0, -1) }))).code).toBe(status.UNAUTHENTICATED);
      await expect(server.auth.login({ username: 'frank', password: long })).resolves.toBeDefined();
    });

    test('NFKC on every path: a full-width username logs in', async () => {
      await expect(server.auth.login({ username: 'ＥＲＩＮ', password: PASSWORD })).resolves.toMatchObject({ tokenType: 'Bearer' });
    });
  });

  describe('Refresh', () => {
    test.each([
      { name: 'empty', token: '', code: status.INVALID_ARGUMENT, details: 'refresh_token is required' },
      { name: 'oversized', token: 'rt2_' + 'a'.repeat(1100), code: status.INVALID_ARGUMENT, details: 'refresh_token must be at most 1024 characters' },
      { name: 'malformed', token: 'not a token', code: status.UNAUTHENTICATED, details: 'refresh token is invalid, expired or revoked' },
      { name: 'unknown', token: 'rt2_' + 'A'.repeat(112), code: status.UNAUTHENTICATED, details: 'refresh token is invalid, expired or revoked' },
    ])('$name token', async ({ token, code, details }) => {
      expect(await statusOf(server.auth.refresh({ refreshToken: token }))).toEqual({ code, details });
    });

    test('an access token is not a refresh token', async () => {
      const { accessToken } = await registerAndLogin(server);
      expect(await statusOf(server.auth.refresh({ refreshToken: accessToken }))).toEqual({
        code: status.UNAUTHENTICATED,
        details: 'refresh token is invalid, expired or revoked',
      });
    });

    test('re-use of a rotated token revokes the session, access tokens included', async () => {
      const first = await registerAndLogin(server);
      const second = await server.auth.refresh({ refreshToken: first.refreshToken });
      server.clock.advance(11_000); // past the 10 s reuse interval
      expect((await statusOf(server.auth.refresh({ refreshToken: first.refreshToken }))).code).toBe(status.UNAUTHENTICATED);
      expect((await statusOf(server.auth.refresh({ refreshToken: second.refreshToken }))).code).toBe(status.UNAUTHENTICATED);
      expect(await server.auth.validate({ accessToken: second.accessToken })).toMatchObject({ active: false, reason: InactiveReason.REVOKED });
      expect(await server.auth.validate({ accessToken: first.accessToken })).toMatchObject({ active: false, reason: InactiveReason.REVOKED });
      const warning = server.logs.entries.find((e) => e.event === 'refresh_token_reused');
      expect(warning).toMatchObject({ level: 'warn', sessionId: expect.stringMatching(/^ses_/) });
    });

    test('N concurrent refreshes of one token: one rotation, one successor, no fork', async () => {
      const { refreshToken } = await registerAndLogin(server);
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => server.auth.refresh({ refreshToken })));
      const successors = new Set(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.refreshToken] : [])));
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
      expect(successors.size).toBe(1);
      const [successor] = [...successors];
      await expect(server.auth.refresh({ refreshToken: successor! })).resolves.toBeDefined();
    });
  });

  describe('Validate', () => {
    test.each([
      { name: 'empty', token: '', details: 'access_token is required' },
      { name: 'oversized', token: 'e'.repeat(4097), details: 'access_token must be at most 4096 characters' },
    ])('$name field → INVALID_ARGUMENT', async ({ token, details }) => {
      expect(await statusOf(server.auth.validate({ accessToken: token }))).toEqual({ code: status.INVALID_ARGUMENT, details });
    });

    test.each([
      { name: 'garbage', token: 'garbage', reason: InactiveReason.MALFORMED },
      { name: 'a refresh token', token: 'rt2_' + 'A'.repeat(112), reason: InactiveReason.MALFORMED },
      { name: 'three empty segments', token: '..', reason: InactiveReason.MALFORMED },
    ])('$name is an answer, not an error', async ({ token, reason }) => {
      expect(await server.auth.validate({ accessToken: token })).toMatchObject({ active: false, reason, userId: '', roles: [] });
    });

    test('expiry is driven by the clock, with the configured skew (expired once now >= exp + skew)', async () => {
      const { accessToken } = await registerAndLogin(server);
      server.clock.advance((900 + 29) * 1000);
      expect((await server.auth.validate({ accessToken })).active).toBe(true);
      server.clock.advance(1000);
      expect(await server.auth.validate({ accessToken })).toMatchObject({ active: false, reason: InactiveReason.EXPIRED });
    });
  });

  describe('Logout', () => {
    test('unknown, malformed and repeated logouts all succeed', async () => {
      const { refreshToken } = await registerAndLogin(server);
      await expect(server.auth.logout({ refreshToken: 'rt2_' + 'B'.repeat(112) })).resolves.toBeDefined();
      await expect(server.auth.logout({ refreshToken: 'whatever' })).resolves.toBeDefined();
      await expect(server.auth.logout({ refreshToken })).resolves.toBeDefined();
      await expect(server.auth.logout({ refreshToken })).resolves.toBeDefined();
    });

    test('an empty token is INVALID_ARGUMENT', async () => {
      expect(await statusOf(server.auth.logout({ refreshToken: '' }))).toEqual({ code: status.INVALID_ARGUMENT, details: 'refresh_token is required' });
    });

    test('logging out with a rotated token ends the session too', async () => {
      const first = await registerAndLogin(server);
      const second = await server.auth.refresh({ refreshToken: first.refreshToken });
      await server.auth.logout({ refreshToken: first.refreshToken });
      expect((await server.auth.validate({ accessToken: second.accessToken })).reason).toBe(InactiveReason.REVOKED);
    });
  });

  test('a token checked again and again gets the same answer each time, until its session ends', async () => {
    // The first answer is built fresh, later ones come from one frozen message: they must agree.
    const login = await registerAndLogin(server);
    const answers = [];
    const principals = [];
    for (let i = 0; i < 4; i++) {
      answers.push(await server.auth.validate({ accessToken: login.accessToken }));
      principals.push(await server.secure.whoAmI({}, bearer(login.accessToken)));
    }
    expect(answers[0]).toMatchObject({ active: true, username: 'alice' });
    for (const answer of answers) expect(answer).toEqual(answers[0]);
    for (const principal of principals) expect(principal).toEqual(principals[0]);
    await server.auth.logout({ refreshToken: login.refreshToken });
    expect(await server.auth.validate({ accessToken: login.accessToken })).toMatchObject({ active: false, reason: InactiveReason.REVOKED, userId: '' });
    expect((await statusOf(server.secure.whoAmI({}, bearer(login.accessToken)))).code).toBe(status.UNAUTHENTICATED);
  });

  test('GetJwks lists the signing key with its RFC 7638 thumbprint as kid', async () => {
    const { jwksJson } = await server.auth.getJwks({});
    const jwks = JSON.parse(jwksJson) as { keys: Array<Record<string, string>> };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toEqual({ kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: server.app.keys.signing.kid, alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  test('GetJwks is empty with HS256', async () => {
    const hs = await startTestServer({ env: { AUTH_JWT_ALG: 'HS256', AUTH_JWT_SECRET: 's'.repeat(32) } });
    try {
      expect(await hs.auth.getJwks({})).toMatchObject({ jwksJson: '{"keys":[]}' });
      const tokens = await registerAndLogin(hs);
      expect((await hs.auth.validate({ accessToken: tokens.accessToken })).active).toBe(true);
    } finally {
      await hs.close();
    }
  });
});

describe('look-alike usernames', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer();
    await server.auth.register({ username: 'alice', password: PASSWORD });
  });
  afterEach(() => server.close());

  const MIXED = (scripts: string) => ({ code: status.INVALID_ARGUMENT, details: `username mixes scripts (${scripts}): write it in one` });
  const LOOKALIKE = { code: status.ALREADY_EXISTS, details: 'username looks like one already taken; choose another' };
  test.each([
    { name: 'alicе (Cyrillic е at the end)', username: 'alic\u0435', want: MIXED('Latin, Cyrillic') },
    { name: 'аlice (Cyrillic а first)', username: '\u0430lice', want: MIXED('Cyrillic, Latin') },
    { name: 'αlice (Greek alpha)', username: '\u03b1lice', want: MIXED('Greek, Latin') },
    { name: 'Alıce (dotless i)', username: 'Al\u0131ce', want: LOOKALIKE },
    { name: 'alíce (i with acute)', username: 'al\u00edce', want: LOOKALIKE },
    { name: 'alic\u0301e… (a combining mark)', username: 'ali\u0301ce', want: LOOKALIKE },
    { name: 'ａｌｉｃｅ (full-width, NFKC makes it alice)', username: '\uff41\uff4c\uff49\uff43\uff45', want: { code: status.ALREADY_EXISTS, details: 'username is already taken' } },
    { name: 'аlісе (Cyrillic but for the l)', username: '\u0430l\u0456\u0441\u0435', want: MIXED('Cyrillic, Latin') },
  ])('Register $name: refused', async ({ username, want }) => {
    expect(await statusOf(server.auth.register({ username, password: PASSWORD }))).toEqual(want);
  });

  test.each([
    { name: 'another name in one script', username: 'alicia' },
    { name: 'Cyrillic', username: 'иван' },
    { name: 'Greek', username: 'ελένη' },
    { name: 'Japanese (Han with Hiragana)', username: '田中さん' },
    { name: 'Latin with Japanese', username: 'tanakaさん' },
    { name: 'accents of its own look', username: 'josé' },
  ])('Register $name: accepted', async ({ username }) => {
    await expect(server.auth.register({ username, password: PASSWORD })).resolves.toMatchObject({ userId: expect.stringMatching(/^usr_/) });
  });

  test('a name written wholly in another script that looks the same is refused: сосо (Cyrillic) beside coco', async () => {
    await server.auth.register({ username: 'coco', password: PASSWORD });
    expect(await statusOf(server.auth.register({ username: '\u0441\u043e\u0441\u043e', password: PASSWORD }))).toEqual(LOOKALIKE);
  });

  test('CreateUser is held to the same rules; deleting a user frees the look of their name', async () => {
    const root = await server.auth.register({ username: 'root', password: PASSWORD });
    await server.app.store.updateUser(root.userId, { roles: ['admin'] });
    const admin = bearer((await server.auth.login({ username: 'root', password: PASSWORD })).accessToken);
    expect(await statusOf(server.admin.createUser({ username: 'al\u00edce', password: PASSWORD, roles: [] }, admin))).toEqual(LOOKALIKE);
    expect(await statusOf(server.admin.createUser({ username: 'alic\u0435', password: PASSWORD, roles: [] }, admin))).toEqual(MIXED('Latin, Cyrillic'));
    const alice = (await server.admin.getUser({ username: 'alice' }, admin)).user!;
    await server.admin.deleteUser({ userId: alice.userId }, admin);
    await expect(server.auth.register({ username: 'al\u00edce', password: PASSWORD })).resolves.toBeDefined();
    expect(await statusOf(server.auth.register({ username: 'alice', password: PASSWORD }))).toEqual(LOOKALIKE);
  });
});
