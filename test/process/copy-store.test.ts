import { knownMigrations } from '../../src/store/postgres/migrations';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as PgClient } from 'pg';
import { ManualClock } from '../../src/clock';
import { ARGON2ID_OWASP, Argon2Hasher, type PasswordHasher } from '../../src/core/password-hasher';
import { PostgresStore } from '../../src/store/postgres/postgres-store';
import { RedisStore } from '../../src/store/redis/redis-store';
import { describeWithPostgres } from '../helpers/postgres';
import { ROOT } from '../helpers/process';
import { startRedis, type TestRedis } from '../helpers/redis';
import { describeNeeding } from '../helpers/requires';
import { rfc6238 } from '../helpers/rfc6238';
import { SoftAuthenticator } from '../helpers/authenticator';
import { bearer, PASSWORD, startTestServer } from '../helpers/server';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function cli(args: string[], env: Record<string, string>, input?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', input, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Registers users through the service itself (real argon2 hashes from the test kit's hasher); bob turns TOTP on. Returns bob's TOTP secret. */
async function populate(env: Record<string, string>): Promise<string> {
  const server = await startTestServer({ env: { ...env, AUTH_USERS_FILE: '' } });
  try {
    for (const username of ['ana', 'bob', 'josé']) expect((await server.auth.register({ username, password: PASSWORD })).userId).toMatch(/^usr_/);
    expect((await server.auth.login({ username: 'ana', password: PASSWORD })).accessToken).not.toBe('');
    const bob = bearer((await server.auth.login({ username: 'bob', password: PASSWORD })).accessToken);
    const enrolled = await server.account.enrollTotp({}, bob);
    await server.account.confirmTotp({ enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, server.clock.now()), password: PASSWORD }, bob);
    return enrolled.secret;
  } finally {
    await server.close();
  }
}

/** After the move bob's authenticator app still works, and a password alone does not let him in. */
async function secondFactorMoved(env: Record<string, string>, secret: string, steps: number): Promise<void> {
  const server = await startTestServer({ env });
  try {
    // The test kit's clocks all start at one instant: a code of a later step than any spent (the last accepted step moves too).
    server.clock.advance(steps * 30_000);
    const login = await server.auth.login({ username: 'bob', password: PASSWORD });
    expect(login).toMatchObject({ mfaRequired: true, accessToken: '' });
    const done = await server.auth.completeLogin({ mfaToken: login.mfaToken, code: rfc6238(secret, server.clock.now()) });
    expect(done.accessToken).not.toBe('');
    expect((await server.account.getAccount({}, bearer(done.accessToken))).mfa).toMatchObject({ enabled: true, recoveryCodesLeft: 10 });
  } finally {
    await server.close();
  }
}

async function statusOfCall(p: Promise<unknown>): Promise<{ code: number }> {
  return p.then(
    () => ({ code: 0 }),
    (e: { code: number }) => ({ code: e.code }),
  );
}

async function loginWorks(env: Record<string, string>, username: string, hasher?: PasswordHasher): Promise<boolean> {
  const server = await startTestServer({ env, ...(hasher ? { hasher } : {}) });
  try {
    const tokens = await server.auth.login({ username, password: PASSWORD });
    return tokens.accessToken.length > 0;
  } finally {
    await server.close();
  }
}

const KNOWN = knownMigrations().length;

describeNeeding(['redis-server'], 'moving in: export and import', () => {
  describeWithPostgres('to PostgreSQL', (pg) => {
    let redis: TestRedis;
    let dir: string;
    beforeAll(async () => {
      redis = await startRedis();
      dir = mkdtempSync(join(tmpdir(), 'auth-export-'));
    });
    afterAll(async () => {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    const listAll = async (store: { listUsers: PostgresStore['listUsers']; listServiceAccounts: PostgresStore['listServiceAccounts'] }) => ({
      users: await store.listUsers({ prefix: '', after: undefined, limit: 1000 }),
      accounts: await store.listServiceAccounts({ prefix: '', after: undefined, limit: 1000 }),
    });

    test('Redis → PostgreSQL → PostgreSQL: every id, hash, time and credential kept; the same passwords log in', async () => {
      const redisEnv = { AUTH_REDIS_URL: redis.url, AUTH_STORE: 'redis', AUTH_REDIS_KEY_PREFIX: 'move1:' };
      const bobSecret = await populate(redisEnv);
      // A service account with a secret, made in Redis directly.
      const source = new RedisStore({ connection: { kind: 'single', url: redis.url }, keyPrefix: 'move1:', commandTimeoutMs: 1000, accessGraceMs: 60_000, maxSessionsPerUser: 10 });
      await source.connect();
      expect(await source.createServiceAccount({ id: 'sva_AAAAAAAAAAAAAAAAAAAAAA', name: 'billing', roles: ['reader'], credential: { type: 'secret', id: 'sec_AAAAAAAAAAAAAAAAAAAAAA', hash: 'h'.repeat(43) } })).toBe('created');
      const before = await listAll(source);
      await source.close();
      expect(before.users.map((u) => u.username)).toEqual(['ana', 'bob', 'josé']);

      const file = join(dir, 'from-redis.jsonl');
      const exported = cli(['export', '--out', file], redisEnv);
      expect(exported).toMatchObject({ code: 0, err: 'grpc-auth: exported 3 users, 2 sessions and 1 service accounts from the redis store\n' });
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(cli(['export', '--out', file], redisEnv)).toMatchObject({ code: 1, err: `grpc-auth: cannot write ${file}: it exists already\n` });

      const target = await pg().createDatabase();
      expect(cli(['import', '--in', file], { AUTH_DATABASE_URL: target })).toMatchObject({ code: 0, err: 'grpc-auth: imported 3 users, 2 sessions and 1 service accounts; 0 brought up to date; 0 as they were\n' });
      // Run twice, it changes nothing.
      expect(cli(['import', '--in', file], { AUTH_DATABASE_URL: target })).toMatchObject({ code: 0, err: 'grpc-auth: imported 0 users, 0 sessions and 0 service accounts; 0 brought up to date; 6 as they were\n' });
      const moved = new PostgresStore({ connection: { url: target, poolSize: 1 }, statementTimeoutMs: 1000, accessGraceMs: 60_000, maxSessionsPerUser: 10, migrate: 'off' });
      await moved.connect();
      try {
        expect(await listAll(moved)).toEqual(before);
      } finally {
        await moved.close();
      }
      expect(await loginWorks({ AUTH_DATABASE_URL: target }, 'ana')).toBe(true);
      await secondFactorMoved({ AUTH_DATABASE_URL: target }, bobSecret, 1);
      // The factor is in the file (the file is its owner's only: it holds password hashes and TOTP secrets); nothing transient is.
      const bobLine = JSON.parse(readFileSync(file, 'utf8').split('\n').find((l) => l.includes('"username":"bob"'))!);
      expect(Object.keys(bobLine.secondFactor).sort()).toEqual(['recovery', 'totp']);
      expect(bobLine.secondFactor.totp.secret).toBe(bobSecret);
      expect(bobLine.secondFactor.recovery).toHaveLength(10);

      // And on from PostgreSQL, by standard output and input.
      const again = cli(['export'], { AUTH_DATABASE_URL: target });
      expect(again.code).toBe(0);
      expect(again.out.split('\n').filter(Boolean).map((l) => JSON.parse(l).kind)).toEqual(['header', 'user', 'session', 'session', 'user', 'session', 'session', 'user', 'service_account']);
      const second = await pg().createDatabase();
      expect(cli(['import'], { AUTH_DATABASE_URL: second }, again.out)).toMatchObject({ code: 0 });
      const copy = new PostgresStore({ connection: { url: second, poolSize: 1 }, statementTimeoutMs: 1000, accessGraceMs: 60_000, maxSessionsPerUser: 10, migrate: 'off' });
      await copy.connect();
      try {
        expect(await listAll(copy)).toEqual(before);
      } finally {
        await copy.close();
      }
      // The first login there spent step 1, and the export carried that: step 1 again would be a replay.
      await secondFactorMoved({ AUTH_DATABASE_URL: second }, bobSecret, 2);
    });

    test('passkeys move with their user: the same authenticator signs in on PostgreSQL; a passkey deleted before the second pass stays deleted', async () => {
      const webauthn = { AUTH_WEBAUTHN_RP_ID: 'example.test' };
      const redisEnv = { AUTH_REDIS_URL: redis.url, AUTH_STORE: 'redis', AUTH_REDIS_KEY_PREFIX: 'move-pk:', ...webauthn };
      const device = new SoftAuthenticator('https://example.test');
      const other = new SoftAuthenticator('https://example.test');
      // Servers on today's time, so the export (stamped with the wall clock) comes after the passkeys.
      const serve = (env: Record<string, string>) => startTestServer({ env, clock: new ManualClock(Date.now() - 60_000) });
      const signIn = async (server: Awaited<ReturnType<typeof serve>>, authenticator: SoftAuthenticator) => {
        const started = await server.auth.startPasskeyLogin({ username: '' });
        return server.auth.finishPasskeyLogin({ ceremonyId: started.ceremonyId, responseJson: authenticator.get(started.optionsJson) });
      };
      const add = async (server: Awaited<ReturnType<typeof serve>>, token: string, authenticator: SoftAuthenticator, name: string) => {
        const started = await server.account.startPasskeyRegistration({}, bearer(token));
        return (await server.account.finishPasskeyRegistration({ ceremonyId: started.ceremonyId, responseJson: authenticator.create(started.optionsJson).json, name }, bearer(token))).passkey!;
      };
      let source = await serve(redisEnv);
      let removed: string;
      try {
        await source.auth.register({ username: 'pia', password: PASSWORD });
        await add(source, (await source.auth.login({ username: 'pia', password: PASSWORD })).accessToken, device, 'laptop');
        removed = (await add(source, (await signIn(source, device)).accessToken, other, 'phone')).passkeyId;
      } finally {
        await source.close();
      }
      const first = join(dir, 'passkeys-1.jsonl');
      expect(cli(['export', '--out', first], redisEnv).code).toBe(0);
      const pia = JSON.parse(readFileSync(first, 'utf8').split('\n').find((l) => l.includes('"username":"pia"'))!);
      expect(Object.keys(pia.secondFactor)).toEqual(['webauthn']);
      expect(pia.secondFactor.webauthn.passkeys.map((p: { name: string }) => p.name)).toEqual(['laptop', 'phone']);
      const target = await pg().createDatabase();
      expect(cli(['import', '--in', first], { AUTH_DATABASE_URL: target }).code).toBe(0);
      let moved = await serve({ AUTH_DATABASE_URL: target, ...webauthn });
      try {
        const tokens = await signIn(moved, device);
        expect((await moved.account.listPasskeys({}, bearer(tokens.accessToken))).passkeys.map((p) => p.name)).toEqual(['laptop', 'phone']);
      } finally {
        await moved.close();
      }

      // Meanwhile at the source: the phone's passkey is deleted, the laptop's signs in again.
      source = await serve(redisEnv);
      try {
        await source.account.deletePasskey({ passkeyId: removed!, code: '' }, bearer((await signIn(source, device)).accessToken));
      } finally {
        await source.close();
      }
      const second = join(dir, 'passkeys-2.jsonl');
      expect(cli(['export', '--out', second], redisEnv).code).toBe(0);
      expect(cli(['import', '--in', second], { AUTH_DATABASE_URL: target })).toMatchObject({ code: 0, err: expect.stringContaining('; 1 brought up to date;') });
      moved = await serve({ AUTH_DATABASE_URL: target, ...webauthn });
      try {
        const tokens = await signIn(moved, device);
        expect((await moved.account.listPasskeys({}, bearer(tokens.accessToken))).passkeys.map((p) => p.name)).toEqual(['laptop']);
        expect((await statusOfCall(signIn(moved, other))).code).toBe(16);
      } finally {
        await moved.close();
      }
    });

    test('API keys move with their owners (the same AUTH_API_KEY_SECRET there): the same secret exchanges on PostgreSQL; a revoked one stays out', async () => {
      const secret = { AUTH_API_KEY_SECRET: 's'.repeat(40) };
      const redisEnv = { AUTH_REDIS_URL: redis.url, AUTH_STORE: 'redis', AUTH_REDIS_KEY_PREFIX: 'move-ak:', ...secret };
      const serve = (env: Record<string, string>) => startTestServer({ env, clock: new ManualClock(Date.now()) });
      let source = await serve(redisEnv);
      let kept: string;
      let account: string;
      try {
        await source.auth.register({ username: 'kim', password: PASSWORD });
        const auth = bearer((await source.auth.login({ username: 'kim', password: PASSWORD })).accessToken);
        kept = (await source.account.createApiKey({ name: 'ci', roles: [], expiresInSeconds: 86_400 }, auth)).secret;
        const gone = await source.account.createApiKey({ name: 'old', roles: [], expiresInSeconds: 86_400 }, auth);
        await source.account.revokeApiKey({ apiKeyId: gone.apiKey!.apiKeyId }, auth);
        await source.auth.exchangeApiKey({ apiKey: kept });
        const sva = await source.app.store.createServiceAccount({ id: 'sva_BBBBBBBBBBBBBBBBBBBBBA', name: 'cron', roles: [], credential: { type: 'secret', id: 'sec_BBBBBBBBBBBBBBBBBBBBBA', hash: 'h'.repeat(43) } });
        expect(sva).toBe('created');
      } finally {
        await source.close();
      }
      // A service account's key, made by an admin's RPC on the source.
      source = await serve(redisEnv);
      try {
        await source.auth.register({ username: 'boss', password: PASSWORD });
        const boss = (await source.app.store.findUserByUsername('boss'))!;
        await source.app.store.updateUser(boss.id, { roles: ['admin'] });
        const admin = bearer((await source.auth.login({ username: 'boss', password: PASSWORD })).accessToken);
        account = (await source.admin.createServiceAccountApiKey({ serviceAccountId: 'sva_BBBBBBBBBBBBBBBBBBBBBA', name: 'cron key', roles: [], expiresInSeconds: 86_400 }, admin)).secret;
      } finally {
        await source.close();
      }
      const file = join(dir, 'api-keys.jsonl');
      expect(cli(['export', '--out', file], redisEnv)).toMatchObject({ code: 0, err: 'grpc-auth: exported 2 users, 2 sessions, 2 API keys and 1 service accounts from the redis store\n' });
      expect(readFileSync(file, 'utf8')).not.toContain(kept!);
      const target = await pg().createDatabase();
      expect(cli(['import', '--in', file], { AUTH_DATABASE_URL: target })).toMatchObject({ code: 0, err: expect.stringContaining('2 API keys') });
      expect(cli(['import', '--in', file], { AUTH_DATABASE_URL: target })).toMatchObject({ code: 0, err: expect.stringMatching(/^grpc-auth: imported 0 users, 0 sessions and 0 service accounts; 0 brought up to date; \d+ as they were\n$/) });
      const moved = await serve({ AUTH_DATABASE_URL: target, ...secret });
      try {
        await expect(moved.auth.exchangeApiKey({ apiKey: kept! })).resolves.toMatchObject({ expiresIn: 900 });
        await expect(moved.auth.exchangeApiKey({ apiKey: account! })).resolves.toMatchObject({ expiresIn: 900 });
        expect((await statusOfCall(moved.auth.exchangeApiKey({ apiKey: kept!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) }))).code).toBe(16);
      } finally {
        await moved.close();
      }
    });

    test('the users file (memory store) → PostgreSQL: file users keep their ids and hashes, and still count as the file’s', async () => {
      const hashed = spawnSync(process.execPath, [CLI, 'hash-password'], { input: `${PASSWORD}\n`, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
      expect(hashed.status).toBe(0);
      const usersFile = join(dir, 'users.txt');
      writeFileSync(usersFile, `carol:${hashed.stdout.trim()}:admin\n`);
      const file = join(dir, 'from-file.jsonl');
      expect(cli(['export', '--out', file], { AUTH_USERS_FILE: usersFile })).toMatchObject({ code: 0, err: 'grpc-auth: exported 1 users, 0 sessions and 0 service accounts from the memory store\n' });
      const line = JSON.parse(readFileSync(file, 'utf8').split('\n')[1]!);
      expect(line).toMatchObject({ kind: 'user', username: 'carol', roles: ['admin'], origin: 'file' });
      const target = await pg().createDatabase();
      expect(cli(['import', '--in', file], { AUTH_DATABASE_URL: target }).code).toBe(0);
      // The file's hash is a real argon2id one (hash-password): checked by the service's own hasher.
      // The file still governs its users (a service without it would remove them), so it stays set.
      expect(await loginWorks({ AUTH_DATABASE_URL: target, AUTH_USERS_FILE: usersFile }, 'carol', new Argon2Hasher({ ...ARGON2ID_OWASP, concurrency: 1, maxQueue: 4 }))).toBe(true);
    }, 60_000);

    test('bad input: the line is named and nothing is imported; a name held by another id stops the import', async () => {
      const target = await pg().createDatabase();
      const header = JSON.stringify({ kind: 'header', format: 'grpc-auth-export', version: 1, store: 'redis', exportedAt: new Date().toISOString() });
      const HASH = `$argon2id$v=19$m=19456,t=2,p=1$${'c2FsdHNhbHRzYWx0c2FsdA'}$${'A'.repeat(43)}`;
      const user = (id: string, username: string, more: Record<string, unknown> = {}) =>
        JSON.stringify({ kind: 'user', id, username, passwordHash: HASH, roles: [], disabled: false, origin: 'api', createdAt: 1, passwordChangedAt: 1, generation: 0, revision: 1, ...more });
      const account = (more: Record<string, unknown> = {}) =>
        JSON.stringify({ kind: 'service_account', id: 'sva_AAAAAAAAAAAAAAAAAAAAAA', name: 'reports', roles: [], disabled: false, createdAt: 1, revision: 1, credentials: [{ type: 'secret', id: 'sec_AAAAAAAAAAAAAAAAAAAAAA', createdAt: 1, hash: 'B'.repeat(43) }], ...more });
      const dan = user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'dan');
      const cases = [
        { input: `${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'dan')}\n`, err: 'grpc-auth: line 1: not a grpc-auth-export file (no header)\n' },
        { input: `\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'dan')}\n`, err: 'grpc-auth: line 2: not a grpc-auth-export file (no header)\n' },
        { input: `${header}\n${dan}\n${header}\n`, err: 'grpc-auth: line 3: a second header\n' },
        {
          // Only the factor and its recovery hashes move: a reset code or a pending login planted in the file is refused.
          input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'dan', { secondFactor: { totp: { secret: 'JBSWY3DPEHPK3PXP', confirmedAt: 1, lastStep: 1 }, recovery: [], reset: { hash: 'A'.repeat(43), expiresAt: 9999999999999 } } })}\n`,
          err: 'grpc-auth: line 2: user without a valid secondFactor\n',
        },
        { input: `${header}\n${dan}\n{"kind":"user","id":"usr_B"}\n`, err: 'grpc-auth: line 3: user without a valid username\n' },
        { input: `${header}\nnot json\n`, err: 'grpc-auth: line 2: not JSON\n' },
        { input: `${header.replace('"version":1', '"version":4')}\n`, err: 'grpc-auth: line 1: export version 4; this release reads versions 1, 2 and 3\n' },
        {
          input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'dan').replace('}', ',"secondFactor":{"totp":{"secret":"not base32!","confirmedAt":1,"lastStep":1},"recovery":[]}}')}\n`,
          err: 'grpc-auth: line 2: user without a valid secondFactor\n',
        },
        { input: '', err: 'grpc-auth: the input is empty: not a grpc-auth-export file\n' },
        // The rules CreateUser, the users file and CreateServiceAccount apply, applied to the file.
        { input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'dan', { roles: ['Admin; DROP TABLE x'] })}\n`, err: 'grpc-auth: line 2: user "dan": invalid role "Admin; DROP TABLE x" (lower-case letters, digits, _ . -; at most 64)\n' },
        { input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'dan', { roles: [' '] })}\n`, err: 'grpc-auth: line 2: user "dan": invalid role " " (lower-case letters, digits, _ . -; at most 64)\n' },
        { input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'ROOT\u200b')}\n`, err: 'grpc-auth: line 2: user "ROOT\u200b": username must be 3 to 64 characters: letters, digits and . _ - @ +\n' },
        { input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'Root')}\n`, err: 'grpc-auth: line 2: user "Root": username is not in the form the service stores ("root")\n' },
        { input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'a'.repeat(5000))}\n`, err: `grpc-auth: line 2: user "${'a'.repeat(40)}"…: username must be at most 256 bytes\n` },
        { input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'paypаl')}\n`, err: 'grpc-auth: line 2: user "paypаl": username mixes scripts (Latin, Cyrillic): write it in one\n' },
        { input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'dan', { passwordHash: 'plaintext-password' })}\n`, err: 'grpc-auth: line 2: user "dan": passwordHash is not an argon2id PHC string\n' },
        { input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'dan', { origin: 'file', fileDigest: 'A'.repeat(22) })}\n`, err: "grpc-auth: line 2: user \"dan\": origin is file, but the id is not the users file's id for that name\n" },
        { input: `${header}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAB', 'dan')}\n`, err: 'grpc-auth: line 2: user "dan": id is not a user id (usr_ and 16 bytes)\n' },
        { input: `${header}\n${dan}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAQ', 'dan')}\n`, err: 'grpc-auth: line 3: the name of line 2 again\n' },
        { input: `${header}\n${dan}\n${user('usr_AAAAAAAAAAAAAAAAAAAAAA', 'dana')}\n`, err: 'grpc-auth: line 3: the id of line 2 again\n' },
        { input: `${header}\n${account({ name: 'Reports\u0000' })}\n`, err: 'grpc-auth: line 2: service account "Reports\\u0000": name must be 3 to 64 of lower-case letters, digits and . _ -\n' },
        { input: `${header}\n${account({ credentials: [{ type: 'secret', id: 'sec_AAAAAAAAAAAAAAAAAAAAAA', createdAt: 1, hash: 'svs_the-secret-itself' }] })}\n`, err: 'grpc-auth: line 2: service account "reports": credential "sec_AAAAAAAAAAAAAAAAAAAAAA": the hash is not a SHA-256 (43 base64url characters)\n' },
      ];
      for (const c of cases) expect(cli(['import'], { AUTH_DATABASE_URL: target }, c.input)).toMatchObject({ code: 1, err: c.err });
      const client = new PgClient({ connectionString: target });
      await client.connect();
      try {
        // Nothing of the files above went in (the first case stopped before the schema was even made).
        const { rows } = await client.query("SELECT to_regclass('auth_users') IS NULL AS none");
        if (!rows[0].none) expect((await client.query('SELECT count(*)::int AS n FROM auth_users')).rows).toEqual([{ n: 0 }]);
        expect(cli(['import'], { AUTH_DATABASE_URL: target }, `${header}\n${dan}\n${account()}\n`).code).toBe(0);
        expect(cli(['import'], { AUTH_DATABASE_URL: target }, `${header}\n${user('usr_BBBBBBBBBBBBBBBBBBBBBA', 'dan')}\n`)).toMatchObject({
          code: 1,
          err: 'grpc-auth: user usr_BBBBBBBBBBBBBBBBBBBBBA: the name "dan" belongs to usr_AAAAAAAAAAAAAAAAAAAAAA in this database\n',
        });
        expect((await client.query('SELECT id FROM auth_users')).rows).toEqual([{ id: 'usr_AAAAAAAAAAAAAAAAAAAAAA' }]);
      } finally {
        await client.end();
      }
      expect(cli(['import'], {}, '')).toMatchObject({ code: 2, err: 'grpc-auth: import writes into PostgreSQL: set AUTH_DATABASE_URL to the database to fill\n' });
    });

    test('grpc-auth migrate: applies once, reports the version; the service started with AUTH_DATABASE_MIGRATE=off serves after it', async () => {
      const target = await pg().createDatabase();
      const env = { AUTH_DATABASE_URL: target, AUTH_DATABASE_MIGRATE: 'off' };
      expect(cli(['migrate', '--status'], env)).toMatchObject({ code: 0, out: `schema version 0; this release knows ${KNOWN} (run grpc-auth migrate)\n` });
      expect(cli(['migrate'], env)).toMatchObject({ code: 0, out: `applied migrations ${Array.from({ length: KNOWN }, (_, i) => i + 1).join(', ')}\n` });
      expect(cli(['migrate'], env)).toMatchObject({ code: 0, out: 'the schema is up to date\n' });
      expect(cli(['migrate', '--status'], env)).toMatchObject({ code: 0, out: `schema version ${KNOWN}; this release knows ${KNOWN}\n` });
      const server = await startTestServer({ env, clock: new ManualClock() });
      try {
        expect((await server.auth.register({ username: 'eve', password: PASSWORD })).userId).toMatch(/^usr_/);
      } finally {
        await server.close();
      }
    });
  });
});
