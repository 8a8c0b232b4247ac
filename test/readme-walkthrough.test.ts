import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startProcess } from './helpers/process';
import { eventually } from './helpers/wait';

/**
 * Runs the README's grpcurl walkthrough verbatim against the built service (only the address is
 * changed, to a free port). grpcurl itself is a Go binary no registry here ships, so a stand-in
 * that speaks server reflection like grpcurl takes its place (test/helpers/grpcurl.js).
 */
describe('README walkthrough', () => {
  test('every step works and prints what the README says', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Walkthrough with grpcurl'));
    const script = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
    expect(script).toContain('A=127.0.0.1:50051\n');

    const bin = mkdtempSync(join(tmpdir(), 'walkthrough-bin-'));
    symlinkSync(join(ROOT, 'test', 'helpers', 'grpcurl.js'), join(bin, 'grpcurl'));
    if (spawnSync('jq', ['--version']).status !== 0) symlinkSync(join(ROOT, 'test', 'helpers', 'jq.js'), join(bin, 'jq'));

    const running = await startProcess({});
    try {
      // stderr joins stdout so the ERROR blocks stay in step order.
      const result = spawnSync('bash', ['-c', 'exec 2>&1\n' + script.replace('A=127.0.0.1:50051\n', `A=${String(running.started.address)}\n`)], {
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
        encoding: 'utf8',
        timeout: 60_000,
      });
      const out = result.stdout;
      // Each expectation is one step of the walkthrough, in order.
      const steps = [
        'auth.v1.AuthService\nauth.v1.SecureService\ngrpc.health.v1.Health\n',
        'Login checks a password and starts a session',
        '"userId": "usr_',
        '"tokenType": "Bearer"',
        '"username": "alice"',
        'Code: Unauthenticated\n  Message: missing bearer token',
        'Code: PermissionDenied\n  Message: requires role admin',
        '"active": true',
        '"jwksJson": "{\\"keys\\":[{\\"kty\\":\\"EC\\"',
        '"status": "SERVING"',
        '"reason": "INACTIVE_REASON_REVOKED"',
      ];
      let at = 0;
      for (const step of steps) {
        const found = out.indexOf(step, at);
        if (found < 0) throw new Error(`walkthrough output lacks, after position ${at}: ${step}\n---\n${out}`);
        at = found + step.length;
      }
      expect(out.match(/ERROR:/g)).toHaveLength(2);
      expect(out).not.toMatch(/Failed|command not found|null/);
    } finally {
      running.child.kill('SIGTERM');
      await running.exit;
    }
  });

  test('the accounts and administration walkthrough: bootstrap an admin with the CLI, then every step', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Accounts and administration with grpcurl'));
    const [bootstrap, session] = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const addLine = bootstrap!.split('\n').find((l) => l.includes('users add'))!;
    expect(bootstrap).toContain('AUTH_USERS_FILE=users npm start');
    const dir = mkdtempSync(join(tmpdir(), 'walkthrough-admin-'));
    // The CLI as `npm run cli` runs it, without the build step (the global setup has built dist/).
    const added = spawnSync('bash', ['-c', addLine.replace('npm run --silent cli --', `${process.execPath} ${join(ROOT, 'dist', 'src', 'cli', 'main.js')}`)], { cwd: dir, encoding: 'utf8' });
    expect(added.stderr).toBe('');
    expect(added.stdout).toBe('added root to users\n');

    const bin = mkdtempSync(join(tmpdir(), 'walkthrough-bin-'));
    symlinkSync(join(ROOT, 'test', 'helpers', 'grpcurl.js'), join(bin, 'grpcurl'));
    if (spawnSync('jq', ['--version']).status !== 0) symlinkSync(join(ROOT, 'test', 'helpers', 'jq.js'), join(bin, 'jq'));
    const running = await startProcess({ AUTH_USERS_FILE: join(dir, 'users') });
    try {
      expect(session).toContain('A=127.0.0.1:50051\n');
      const result = spawnSync('bash', ['-c', 'exec 2>&1\n' + session!.replace('A=127.0.0.1:50051\n', `A=${String(running.started.address)}\n`)], {
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
        encoding: 'utf8',
        timeout: 60_000,
      });
      const out = result.stdout;
      const steps = [
        '"username": "bob"',
        '"origin": "USER_ORIGIN_API"',
        '"username": "bob"',
        '"current": true',
        'Code: PermissionDenied\n  Message: requires role admin',
        '"admin"',
        '"message": "pong"',
        '"disabled": true',
        '"reason": "INACTIVE_REASON_REVOKED"',
        'Code: FailedPrecondition\n  Message: account disabled',
      ];
      let at = 0;
      for (const step of steps) {
        const found = out.indexOf(step, at);
        if (found < 0) throw new Error(`walkthrough output lacks, after position ${at}: ${step}\n---\n${out}`);
        at = found + step.length;
      }
      expect(out.match(/ERROR:/g)).toHaveLength(2);
      expect(out).not.toMatch(/Failed to|command not found|null/);
      // The walkthrough ran synchronously: the service's log lines are read from here on.
      await eventually(() => running.lines.some((l) => l.event === 'user_deleted'));
      expect(running.lines.filter((l) => ['user_created', 'roles_changed', 'user_disabled', 'user_enabled', 'login_throttle_reset', 'user_deleted'].includes(String(l.event))).map((l) => l.event)).toEqual([
        'user_created',
        'roles_changed',
        'user_disabled',
        'user_enabled',
        'login_throttle_reset',
        'user_deleted',
      ]);
    } finally {
      running.child.kill('SIGTERM');
      await running.exit;
    }
  });

  test('the service-to-service walkthrough: create an account, get a token, call, rotate the secret', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const admin = readme.slice(readme.indexOf('## Accounts and administration with grpcurl'));
    const addLine = /```sh\n([\s\S]*?)```/.exec(admin)![1]!.split('\n').find((l) => l.includes('users add'))!;
    const section = readme.slice(readme.indexOf('## Service-to-service: service accounts'));
    const script = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
    const dir = mkdtempSync(join(tmpdir(), 'walkthrough-s2s-'));
    spawnSync('bash', ['-c', addLine.replace('npm run --silent cli --', `${process.execPath} ${join(ROOT, 'dist', 'src', 'cli', 'main.js')}`)], { cwd: dir });
    const bin = mkdtempSync(join(tmpdir(), 'walkthrough-bin-'));
    symlinkSync(join(ROOT, 'test', 'helpers', 'grpcurl.js'), join(bin, 'grpcurl'));
    if (spawnSync('jq', ['--version']).status !== 0) symlinkSync(join(ROOT, 'test', 'helpers', 'jq.js'), join(bin, 'jq'));
    const running = await startProcess({ AUTH_USERS_FILE: join(dir, 'users') });
    try {
      const result = spawnSync('bash', ['-c', 'exec 2>&1\n' + script.replace('A=127.0.0.1:50051\n', `A=${String(running.started.address)}\n`)], {
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
        encoding: 'utf8',
        timeout: 60_000,
      });
      const out = result.stdout;
      const steps = ['"subjectType": "SUBJECT_TYPE_SERVICE_ACCOUNT"', '"accessToken": "ey', '"reason": "INACTIVE_REASON_REVOKED"', 'Code: Unauthenticated\n  Message: client authentication failed'];
      let at = 0;
      for (const step of steps) {
        const found = out.indexOf(step, at);
        if (found < 0) throw new Error(`walkthrough output lacks, after position ${at}: ${step}\n---\n${out}`);
        at = found + step.length;
      }
      expect(out.match(/ERROR:/g)).toHaveLength(1);
      expect(out).not.toMatch(/Failed to|command not found|null/);
      await eventually(() => running.lines.filter((l) => l.event === 'service_token_issued').length === 2);
    } finally {
      running.child.kill('SIGTERM');
      await running.exit;
    }
  });
});
