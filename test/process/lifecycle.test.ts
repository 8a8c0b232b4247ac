import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { generateEcPem, loadEcKeyFile } from '../../src/core/keys';
import { createClient } from '../../src/grpc/client';
import { baseEnv, MAIN, ROOT, startProcess as start, stopProcess } from '../helpers/process';

describe('the service process', () => {
  test('starts in development mode, logs one start-up line, serves, and exits 0 on SIGTERM', async () => {
    const running = await start({});
    expect(running.lines[0]).toMatchObject({ level: 'warn', event: 'ephemeral_key' });
    expect(running.started).toMatchObject({ level: 'info', version: expect.stringMatching(/^\d+\.\d+\.\d+/), store: 'memory', algorithm: 'ES256', kid: expect.any(String), address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    const client = createClient(AuthService, String(running.started.address));
    try {
      const jwks = JSON.parse((await client.getJwks({})).jwksJson) as { keys: Array<{ kid: string }> };
      expect(jwks.keys[0]!.kid).toBe(running.started.kid);
    } finally {
      client.close();
    }
    expect(await stopProcess(running)).toBe(0);
    expect(running.lines.map((l) => l.event).slice(-2)).toEqual(['stopping', 'stopped']);
  });

  test('production with a key file: the kid is the key thumbprint, no development warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'auth-key-'));
    const keyFile = join(dir, 'signing.pem');
    writeFileSync(keyFile, generateEcPem(), { mode: 0o600 });
    const running = await start({ NODE_ENV: 'production', AUTH_ISSUER: 'https://auth.example', AUTH_AUDIENCE: 'svc', AUTH_SIGNING_KEY_FILE: keyFile, AUTH_ALLOW_INSECURE: 'true' });
    expect(running.lines.some((l) => l.event === 'ephemeral_key')).toBe(false);
    expect(running.lines).toContainEqual(expect.objectContaining({ level: 'warn', event: 'insecure_transport' }));
    expect(running.started).toMatchObject({ kid: loadEcKeyFile(keyFile).kid, production: true });
    expect(await stopProcess(running, 'SIGINT')).toBe(0);
  });

  test.each([
    { name: 'production without TLS', env: { NODE_ENV: 'production', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a', AUTH_SIGNING_KEY_FILE: '/k' }, out: 'configuration error: NODE_ENV=production needs AUTH_TLS_CERT and AUTH_TLS_KEY' },
    { name: 'production without a key', env: { NODE_ENV: 'production', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a', AUTH_ALLOW_INSECURE: 'true' }, out: 'configuration error: AUTH_SIGNING_KEY_FILE is required when NODE_ENV=production' },
    { name: 'a bad duration', env: { AUTH_ACCESS_TTL: 'forever' }, out: 'configuration error: AUTH_ACCESS_TTL must be a duration' },
    { name: 'a missing key file', env: { AUTH_SIGNING_KEY_FILE: '/nonexistent/key.pem' }, out: 'cannot read signing key file /nonexistent/key.pem: ENOENT' },
  ])('refuses to start with $name (exit 2, the setting named)', ({ env, out }) => {
    const result = spawnSync(process.execPath, [MAIN], { env: { ...baseEnv, ...env }, cwd: ROOT, encoding: 'utf8', timeout: 10_000 });
    expect(result.status).toBe(2);
    expect(result.stdout + result.stderr).toContain(out);
  });

  const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  const runCli = (args: string[], input?: string, env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [cli, ...args], { input, encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH ?? '', ...env } });

  test('keys generate writes a 0600 key file, prints its kid, and never overwrites', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'auth-keygen-')), 'new.pem');
    const ok = runCli(['keys', 'generate', file]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe(`${loadEcKeyFile(file).kid}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = runCli(['keys', 'generate', file]);
    expect(again.status).toBe(1);
    expect(again.stderr).toBe(`grpc-auth: cannot create ${file}: the file exists (refusing to overwrite a key)\n`);
    expect(runCli(['keys', 'generate']).status).toBe(2);
  });

  test('hash-password prints an argon2id hash of stdin and refuses a short password', () => {
    const ok = runCli(['hash-password'], 'a long enough passphrase\n');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+\n$/);
    const short = runCli(['hash-password'], 'short\n');
    expect(short.status).toBe(2);
    expect(short.stderr).toBe('grpc-auth: password must be at least 15 characters\n');
  });

  test('users add appends a user the service then logs in, and refuses a duplicate or a bad role', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'auth-users-')), 'users');
    const added = runCli(['users', 'add', file, 'Root', '--roles', 'admin,ops'], 'the operator passphrase\n');
    expect(added.stderr).toBe('');
    expect(added.status).toBe(0);
    expect(added.stdout).toBe(`added root to ${file}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(runCli(['users', 'add', file, 'root'], 'the operator passphrase\n')).toMatchObject({ status: 1, stderr: `grpc-auth: ${file} already has a user root\n` });
    expect(runCli(['users', 'add', file, 'other', '--roles', 'Bad Role'], 'the operator passphrase\n')).toMatchObject({
      status: 2,
      stderr: 'grpc-auth: invalid role "Bad Role" (lower-case letters, digits, _ . -)\n',
    });
    const running = await start({ AUTH_USERS_FILE: file });
    const client = createClient(AuthService, String(running.started.address));
    try {
      await expect(client.login({ username: 'root', password: 'the operator passphrase' })).resolves.toMatchObject({ tokenType: 'Bearer' });
    } finally {
      client.close();
      await stopProcess(running);
    }
  });

  test('check-config prints the effective configuration with secrets masked, or names the bad variable', () => {
    const secret = 'an-hs256-secret-of-at-least-32-bytes!!';
    const ok = runCli(['check-config'], undefined, { AUTH_JWT_ALG: 'HS256', AUTH_JWT_SECRET: secret, AUTH_STORE: 'redis', AUTH_REDIS_URL: 'redis://:hunter2pass@db:6379/1' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).not.toContain(secret);
    expect(ok.stdout).not.toContain('hunter2pass');
    expect(JSON.parse(ok.stdout.slice(0, ok.stdout.lastIndexOf('}') + 1))).toMatchObject({ jwtAlg: 'HS256', jwtSecret: '[set: 38 bytes]', redisUrl: 'redis://****@db:6379/1', accessTtlMs: 900_000 });
    expect(ok.stdout).toMatch(/configuration OK \(\d+ settings at their defaults\)\n$/);
    const bad = runCli(['check-config'], undefined, { AUTH_ACCESS_TTL: 'soon' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^grpc-auth: configuration error: AUTH_ACCESS_TTL must be a duration/);
    const query = runCli(['check-config'], undefined, { AUTH_STORE: 'redis', AUTH_REDIS_URL: 'redis://db:6379/0?password=hunter3pass' });
    expect(query.stdout).not.toContain('hunter3pass');
    expect(query.stdout).toContain('"redisUrl": "redis://db:6379/0?****"');
    const pg = runCli(['check-config'], undefined, { AUTH_DATABASE_URL: 'postgres://auth:hunter4pass@db:5432/auth?sslmode=verify-full&password=hunter5pass' });
    expect(pg.status).toBe(0);
    expect(pg.stdout).not.toMatch(/hunter4pass|hunter5pass/);
    expect(JSON.parse(pg.stdout.slice(0, pg.stdout.lastIndexOf('}') + 1))).toMatchObject({ store: 'postgres', databaseUrl: 'postgres://****@db:5432/auth?****' });
    expect(runCli(['check-config'], undefined, { AUTH_SIGNING_KEY_FILE: '/nope.pem' })).toMatchObject({ status: 2, stderr: 'grpc-auth: cannot read signing key file /nope.pem: ENOENT\n' });
    // A misspelt setting fails the check: it would ship with the value it meant to change at its default.
    expect(runCli(['check-config'], undefined, { AUTH_ACESS_TTL: '5m' })).toMatchObject({
      status: 2,
      stdout: '',
      stderr: 'grpc-auth: configuration error: AUTH_ACESS_TTL is not a setting of this service (the service would ignore it): did you mean AUTH_ACCESS_TTL?\n',
    });
    // Roles that need a second factor do not bind service accounts: check-config says so.
    expect(runCli(['check-config'], undefined, { AUTH_MFA_REQUIRED_ROLES: 'admin' }).stderr).toBe(
      'grpc-auth: note: AUTH_MFA_REQUIRED_ROLES (admin) is withheld from users\' password-only sessions only: a service account holding that role gets it with its credential alone; AUTH_ADMIN_REQUIRE_MFA=true keeps every service account out of AdminService\n',
    );
    // The reset hook's URL is not secret, but a token in its query is: shown masked, as every URL.
    const hook = runCli(['check-config'], undefined, { AUTH_PASSWORD_RESET_HOOK_URL: 'https://mailer.internal/reset?token=hunter8tok', AUTH_PASSWORD_RESET_HOOK_SECRET: `whsec_${Buffer.alloc(32, 1).toString('base64')}` });
    expect(hook.status).toBe(0);
    expect(hook.stdout).not.toContain('hunter8tok');
    expect(JSON.parse(hook.stdout.slice(0, hook.stdout.lastIndexOf('}') + 1))).toMatchObject({ passwordResetHookUrl: 'https://mailer.internal/reset?****' });
  });

  test('help, and clear errors for unknown commands', () => {
    expect(runCli(['help'])).toMatchObject({ status: 0, stdout: expect.stringContaining('usage: grpc-auth <command>') });
    const unknown = runCli(['frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^grpc-auth: unknown command "frobnicate"/);
    expect(runCli([]).status).toBe(2);
  });

  test('--version and version print the package version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(runCli(['--version'])).toMatchObject({ status: 0, stdout: `${version}\n`, stderr: '' });
    expect(runCli(['version'])).toMatchObject({ status: 0, stdout: `${version}\n`, stderr: '' });
    expect(runCli(['help'], undefined).stdout).toContain(`grpc-auth ${version}`);
  });

  // Every command: --help prints its usage, exit 0, and does nothing else: no key file named
  // "--help", no service started, no configuration printed, nothing read from standard input.
  test.each(['serve', 'health', 'keys', 'hash-password', 'users', 'migrate', 'export', 'import', 'check-config', 'version'])('%s --help prints its usage and does nothing else', (command) => {
    const dir = mkdtempSync(join(tmpdir(), 'auth-help-'));
    const args = command === 'keys' ? ['keys', 'generate', '--help'] : command === 'users' ? ['users', 'add', 'file', '--help'] : [command, '--help'];
    const run = spawnSync(process.execPath, [cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 10_000, env: { PATH: process.env.PATH ?? '', AUTH_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout).toMatch(new RegExp(`^usage: grpc-auth ${command}`));
    expect(readdirSync(dir)).toEqual([]);
    expect(runCli(['help', command]).stdout).toBe(run.stdout);
  });

  test('start-up failures: one plain line on standard error naming what is wrong, exit 2 for configuration, 1 for the rest', async () => {
    const holder = await start({});
    try {
      const busy = spawnSync(process.execPath, [MAIN], { env: { ...baseEnv, AUTH_ADDRESS: String(holder.started.address) }, cwd: ROOT, encoding: 'utf8', timeout: 10_000 });
      expect({ status: busy.status, stderr: busy.stderr }).toEqual({ status: 1, stderr: `grpc-auth: cannot listen on ${String(holder.started.address)}: the address is in use (EADDRINUSE)\n` });
      expect(busy.stdout).toContain('"event":"startup_failed"');
    } finally {
      await stopProcess(holder);
    }
    const key = spawnSync(process.execPath, [MAIN], { env: { ...baseEnv, AUTH_SIGNING_KEY_FILE: '/nonexistent/key.pem' }, cwd: ROOT, encoding: 'utf8', timeout: 10_000 });
    expect({ status: key.status, stderr: key.stderr }).toEqual({ status: 2, stderr: 'grpc-auth: cannot read signing key file /nonexistent/key.pem: ENOENT\n' });
  });

  test('serve starts the service like npm start', async () => {
    const running = await start({}, { argv: [process.execPath, cli, 'serve'], cwd: ROOT });
    expect(running.started).toMatchObject({ msg: 'auth service listening', store: 'memory' });
    expect(await stopProcess(running)).toBe(0);
    expect(running.lines.map((l) => l.event).slice(-2)).toEqual(['stopping', 'stopped']);
  });
});
