import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthService } from '../gen/auth/v1/auth_pb';
import { generateEcPem, loadEcKeyFile } from '../src/core/keys';
import { createUnaryClient } from '../src/grpc/client';
import { baseEnv, MAIN, ROOT, startProcess as start } from './helpers/process';

describe('the service process', () => {
  test('starts in development mode, logs one start-up line, serves, and exits 0 on SIGTERM', async () => {
    const running = await start({});
    expect(running.lines[0]).toMatchObject({ level: 'warn', event: 'ephemeral_key' });
    expect(running.started).toMatchObject({ level: 'info', store: 'memory', algorithm: 'ES256', kid: expect.any(String), address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    const client = createUnaryClient(AuthService, String(running.started.address));
    try {
      const jwks = JSON.parse((await client.getJwks({})).jwksJson) as { keys: Array<{ kid: string }> };
      expect(jwks.keys[0]!.kid).toBe(running.started.kid);
    } finally {
      client.close();
    }
    running.child.kill('SIGTERM');
    expect(await running.exit).toBe(0);
    expect(running.lines.map((l) => l.event).slice(-2)).toEqual(['stopping', 'stopped']);
  });

  test('production with a key file: the kid is the key thumbprint, no development warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'auth-key-'));
    const keyFile = join(dir, 'signing.pem');
    writeFileSync(keyFile, generateEcPem(), { mode: 0o600 });
    const running = await start({ NODE_ENV: 'production', AUTH_ISSUER: 'https://auth.example', AUTH_AUDIENCE: 'svc', AUTH_SIGNING_KEY_FILE: keyFile });
    expect(running.lines.some((l) => l.event === 'ephemeral_key')).toBe(false);
    expect(running.started).toMatchObject({ kid: loadEcKeyFile(keyFile).kid, production: true });
    running.child.kill('SIGINT');
    expect(await running.exit).toBe(0);
  });

  test.each([
    { name: 'production without a key', env: { NODE_ENV: 'production', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' }, out: 'configuration error: AUTH_SIGNING_KEY_FILE is required when NODE_ENV=production' },
    { name: 'a bad duration', env: { AUTH_ACCESS_TTL: 'forever' }, out: 'configuration error: AUTH_ACCESS_TTL must be a duration' },
    { name: 'a missing key file', env: { AUTH_SIGNING_KEY_FILE: '/nonexistent/key.pem' }, out: 'cannot read signing key file /nonexistent/key.pem: ENOENT' },
  ])('refuses to start with $name (exit 2, the setting named)', ({ env, out }) => {
    const result = spawnSync(process.execPath, [MAIN], { env: { ...baseEnv, ...env }, cwd: ROOT, encoding: 'utf8', timeout: 10_000 });
    expect(result.status).toBe(2);
    expect(result.stdout + result.stderr).toContain(out);
  });

  test('keys:generate writes a 0600 key file, prints its kid, and never overwrites', () => {
    const cli = join(ROOT, 'dist', 'src', 'cli', 'keys-generate.js');
    const file = join(mkdtempSync(join(tmpdir(), 'auth-keygen-')), 'new.pem');
    const ok = spawnSync(process.execPath, [cli, file], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe(`${loadEcKeyFile(file).kid}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = spawnSync(process.execPath, [cli, file], { encoding: 'utf8' });
    expect(again.status).toBe(1);
    expect(again.stderr).toBe(`keys:generate: cannot create ${file}: the file exists (refusing to overwrite a key)\n`);
    expect(spawnSync(process.execPath, [cli], { encoding: 'utf8' }).status).toBe(2);
  });

  test('hash-password prints an argon2id hash of stdin and refuses a short password', () => {
    const cli = join(ROOT, 'dist', 'src', 'cli', 'hash-password.js');
    const ok = spawnSync(process.execPath, [cli], { input: 'a long enough passphrase\n', encoding: 'utf8', timeout: 20_000 });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+\n$/);
    const short = spawnSync(process.execPath, [cli], { input: 'short\n', encoding: 'utf8', timeout: 20_000 });
    expect(short.status).toBe(2);
    expect(short.stderr).toBe('hash-password: password must be at least 15 characters\n');
  });
});
