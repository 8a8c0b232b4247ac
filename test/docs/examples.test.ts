import { Metadata } from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccountService } from '../../gen/auth/v1/account_pb';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { generateEcPem } from '../../src/core/keys';
import { createClient } from '../../src/grpc/client';
import { startOtlpReceiver } from '../helpers/otlp';
import { startPgBouncer } from '../helpers/pgbouncer';
import { startPostgres, type TestPostgres } from '../helpers/postgres';
import { MAIN, ROOT, startProcess } from '../helpers/process';
import { describeWithRedis, freePort } from '../helpers/redis';
import { describeNeeding } from '../helpers/requires';
import { PASSWORD } from '../helpers/server';
import { createTestCa, describeWithOpenssl } from '../helpers/tls';
import { eventually } from '../helpers/wait';
import { docBlock } from '../helpers/walkthrough';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/**
 * A documented command line as its parts: the `NAME=value` assignments in front (a block's lines
 * joined where they end in a backslash), the command, and its arguments. Single quotes are taken
 * off as a shell would.
 */
function commandLines(block: string): Array<{ env: Record<string, string>; argv: string[] }> {
  return block
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean)
    .map((line) => {
      const words = line.match(/(?:'[^']*'|[^\s'])+/g)!.map((w) => w.replace(/'([^']*)'/g, '$1'));
      const env: Record<string, string> = {};
      while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) {
        const [name, ...value] = words.shift()!.split('=');
        env[name!] = value.join('=');
      }
      return { env, argv: words };
    });
}

/** A documented `node dist/src/main.js` / `grpc-auth` command as the test runs it: the built service. */
function argvOf(argv: string[]): string[] {
  if (argv[0] === 'node' && argv[1] === 'dist/src/main.js') return [process.execPath, MAIN, ...argv.slice(2)];
  if (argv[0] === 'grpc-auth') return [process.execPath, CLI, ...argv.slice(1)];
  throw new Error(`not a command of this service: ${argv.join(' ')}`);
}

/** Starts a documented start command with its values put right for this machine, and stops it after `check`. */
async function startsAndStops(line: { env: Record<string, string>; argv: string[] }, check: (started: Record<string, unknown>) => Promise<void> | void) {
  const running = await startProcess(line.env, { argv: argvOf(line.argv), cwd: ROOT });
  try {
    await check(running.started);
  } finally {
    running.child.kill('SIGTERM');
  }
  expect(await running.exit).toBe(0);
}

/** A key file at the documented path's name, in `dir`. */
function keyAt(dir: string, path: string): string {
  const file = join(dir, path.split('/').pop()!);
  if (!existsSync(file)) writeFileSync(file, generateEcPem(), { mode: 0o600 });
  return file;
}

describe('the README', () => {
  test("its two commands: npm start builds and runs the service on the memory store, npm test runs jest", async () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(commandLines(docBlock('README.md', 'landing')).map((l) => l.argv.join(' '))).toEqual(['npm ci && npm start', 'npm ci && npm test']);
    expect({ prestart: scripts.prestart, start: scripts.start, test: scripts.test }).toEqual({ prestart: 'npm run build --silent', start: 'node dist/src/main.js', test: 'jest' });
    // What `npm start` runs once the build is done (the global set-up built it), on a free port.
    await startsAndStops({ env: { AUTH_ADDRESS: '127.0.0.1:0' }, argv: scripts.start!.split(' ') }, (started) => expect(started).toMatchObject({ store: 'memory', production: false }));
  });
});

describe('docs/production.md', () => {
  test('the complete environment passes check-config, once the files it names exist', () => {
    const dir = mkdtempSync(join(tmpdir(), 'production-env-'));
    const ca = createTestCa('production-env');
    const server = ca.issue('server', 'server');
    const files: Record<string, string> = {
      '/etc/grpc-auth/keys/2026-11.pem': keyAt(dir, '2026-11.pem'),
      '/etc/grpc-auth/keys/2026-05.pem': keyAt(dir, '2026-05.pem'),
      '/etc/grpc-auth/tls/server.pem': server.cert,
      '/etc/grpc-auth/tls/server.key': server.key,
      '/etc/grpc-auth/tls/clients-ca.pem': ca.caPem,
      '/etc/grpc-auth/tls/db-ca.pem': ca.caPem,
      '/etc/grpc-auth/users': join(dir, 'users'),
    };
    const made = spawnSync(process.execPath, [CLI, 'users', 'add', files['/etc/grpc-auth/users']!, 'root', '--roles', 'admin'], { input: PASSWORD, encoding: 'utf8' });
    expect(made.status).toBe(0);
    const env: Record<string, string> = {};
    for (const line of docBlock('docs/production.md', 'production-env').split('\n').filter(Boolean)) {
      const [name, ...value] = line.split('=');
      env[name!] = Object.entries(files).reduce((v, [from, to]) => v.split(from).join(to), value.join('='));
    }
    const run = spawnSync(process.execPath, [CLI, 'check-config'], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect(run.stdout).toMatch(/configuration OK/);
    expect(JSON.parse(run.stdout.slice(0, run.stdout.lastIndexOf('}') + 1))).toMatchObject({ production: true, store: 'postgres', registration: 'closed' });
  });
});

describe('docs/development.md', () => {
  test('every npm script it names exists, and so does .ci/run', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const { argv } of commandLines(docBlock('docs/development.md', 'development'))) {
      if (argv[0] === 'npm' && argv[1] === 'run') expect({ script: argv[2], defined: argv[2]! in scripts }).toEqual({ script: argv[2], defined: true });
      else if (argv[0] === 'npm') expect(['ci', 'test']).toContain(argv[1]);
      else expect(argv).toEqual(['bash', '.ci/run']);
    }
  });
});

describe('docs/observability.md: tracing', () => {
  test('the documented start command exports spans to the collector it names', async () => {
    const receiver = await startOtlpReceiver('http/protobuf');
    try {
      const [line] = commandLines(docBlock('docs/observability.md', 'tracing-start'));
      line!.env.OTEL_EXPORTER_OTLP_ENDPOINT = line!.env.OTEL_EXPORTER_OTLP_ENDPOINT!.replace('http://otel-collector:4318', receiver.endpoint);
      await startsAndStops(line!, async (started) => {
        const client = createClient(AuthService, String(started.address));
        await client.getJwks({});
        client.close();
      });
      // The spans still queued are flushed on SIGTERM.
      expect(receiver.spans.map((s) => s.name)).toContain('auth.v1.AuthService/GetJwks');
      expect(receiver.spans[0]!.serviceName).toBe('grpc-auth');
    } finally {
      await receiver.close();
    }
  }, 30_000);
});

describeWithRedis('docs/redis.md', (redis) => {
  test('the documented start command serves on Redis', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-start-'));
    const [line] = commandLines(docBlock('docs/redis.md', 'redis-start'));
    line!.env.AUTH_REDIS_URL = line!.env.AUTH_REDIS_URL!.replace('redis://127.0.0.1:6379', redis().url);
    line!.env.AUTH_SIGNING_KEY_FILE = keyAt(dir, line!.env.AUTH_SIGNING_KEY_FILE!);
    await startsAndStops(line!, (started) => expect(started).toMatchObject({ store: 'redis', issuer: 'https://auth.example', audience: 'backend' }));
  }, 30_000);
});

describeWithOpenssl('docs/postgresql.md', () => {
  let pg: TestPostgres;
  const ca = createTestCa('docs-postgres');
  beforeAll(async () => {
    pg = await startPostgres({ tls: ca.issue('server', 'server') });
  }, 60_000);
  afterAll(() => pg?.destroy());

  /** The documented URL pointed at the test server (trust authentication: any password goes), its CA at the documented path's place. */
  const local = async (url: string) => {
    const database = new URL(await pg.createDatabase()).pathname.slice(1);
    const port = new URL(pg.url).port;
    return url.replace(/@db\.internal(:5432)?\/auth/, `@127.0.0.1:${port}/${database}`).replace('/etc/auth/db-ca.pem', ca.caPem);
  };

  test('the documented start command serves on PostgreSQL over verified TLS', async () => {
    const [line] = commandLines(docBlock('docs/postgresql.md', 'postgres-start'));
    line!.env.AUTH_DATABASE_URL = await local(line!.env.AUTH_DATABASE_URL!);
    expect(line!.env.AUTH_DATABASE_URL).toContain('sslmode=verify-full');
    line!.env.AUTH_SIGNING_KEY_FILE = keyAt(mkdtempSync(join(tmpdir(), 'pg-start-')), line!.env.AUTH_SIGNING_KEY_FILE!);
    await startsAndStops(line!, (started) => expect(started).toMatchObject({ store: 'postgres' }));
  }, 30_000);

  describeWithRedis('moving in from Redis', (redis) => {
    test('the documented two-pass cut-over moves a user, their session and a password changed between the passes', async () => {
      const lines = commandLines(docBlock('docs/postgresql.md', 'move-in'));
      expect(lines.map((l) => l.argv.slice(0, 2).join(' '))).toEqual(['grpc-auth export', 'grpc-auth import', 'grpc-auth maintenance', 'grpc-auth export', 'grpc-auth import']);
      const secure = mkdtempSync(join(tmpdir(), 'move-in-'));
      const map = (args: string[]) => args.map((a) => a.replace('/secure/', `${secure}/`));
      const target = await local(lines[1]!.env.AUTH_DATABASE_URL!);
      // The Redis lines with the source instance's store timeout (maintenance waits for it).
      const envOf = (e: Record<string, string>) => ({ PATH: process.env.PATH ?? '', ...e, ...(e.AUTH_REDIS_URL ? { AUTH_REDIS_URL: redis().url, AUTH_STORE_TIMEOUT: '1s', AUTH_REDIS_COMMAND_TIMEOUT_MS: '250' } : {}), ...(e.AUTH_DATABASE_URL ? { AUTH_DATABASE_URL: target } : {}) });
      // Someone to move: registered and signed in on the Redis store.
      const source = await startProcess({ AUTH_REDIS_URL: redis().url, AUTH_STORE_TIMEOUT: '1s', AUTH_REDIS_COMMAND_TIMEOUT_MS: '250' });
      const client = createClient(AuthService, String(source.started.address));
      await client.register({ username: 'mover', password: PASSWORD });
      const session = await client.login({ username: 'mover', password: PASSWORD });
      const outputs: string[] = [];
      const runLine = (i: number) => {
        const [node, ...args] = map(argvOf(lines[i]!.argv));
        const r = spawnSync(node!, args, { env: envOf(lines[i]!.env), encoding: 'utf8' });
        expect({ line: i, status: r.status }).toEqual({ line: i, status: 0 });
        outputs.push(r.stderr.trim());
      };
      runLine(0);
      runLine(1);
      // Between the passes the user changes their password (the session refreshes too).
      const account = createClient(AccountService, String(source.started.address));
      const metadata = new Metadata();
      metadata.set('authorization', `Bearer ${session.accessToken}`);
      await account.changePassword({ currentPassword: PASSWORD, newPassword: `${PASSWORD} changed` }, { metadata });
      const refreshed = await client.refresh({ refreshToken: session.refreshToken });
      runLine(2);
      await expect(client.register({ username: 'too-late', password: PASSWORD })).rejects.toMatchObject({ code: 14 });
      runLine(3);
      runLine(4);
      expect(outputs).toEqual([
        'grpc-auth: exported 1 users, 1 sessions and 0 service accounts from the redis store',
        'grpc-auth: imported 1 users, 1 sessions and 0 service accounts; 0 brought up to date; 0 as they were',
        expect.stringMatching(/^grpc-auth: maintenance on: waiting \d+\.\d s for every instance to see it$/) as string,
        'grpc-auth: exported 1 users, 1 sessions and 0 service accounts from the redis store',
        'grpc-auth: imported 0 users, 1 sessions and 0 service accounts; 1 brought up to date; 0 as they were',
      ]);
      client.close();
      account.close();
      source.child.kill('SIGTERM');
      await source.exit;
      const onPg = await startProcess({ AUTH_DATABASE_URL: target });
      const pgClient = createClient(AuthService, String(onPg.started.address));
      try {
        await expect(pgClient.login({ username: 'mover', password: PASSWORD })).rejects.toMatchObject({ code: 16 });
        expect((await pgClient.login({ username: 'mover', password: `${PASSWORD} changed` })).accessToken).not.toBe('');
        expect((await pgClient.refresh({ refreshToken: refreshed.refreshToken })).accessToken).not.toBe('');
      } finally {
        pgClient.close();
        onPg.child.kill('SIGTERM');
        await onPg.exit;
      }
    }, 60_000);
  });

  test('the documented multi-host URL: the first host down, the service writes to the next', async () => {
    const [line] = commandLines(docBlock('docs/postgresql.md', 'multi-host-url'));
    const database = new URL(await pg.createDatabase()).pathname;
    const down = await freePort();
    line!.env.AUTH_DATABASE_URL = line!.env.AUTH_DATABASE_URL!.replace(/@db1\.internal:5432,db2\.internal:5432\/auth/, `@127.0.0.1:${down},127.0.0.1:${new URL(pg.url).port}${database}`).replace('sslmode=verify-full', `sslmode=verify-full&sslrootcert=${ca.caPem}`);
    expect(line!.env.AUTH_DATABASE_URL).toContain('target_session_attrs=read-write');
    await startsAndStops(line!, async (started) => {
      expect(started).toMatchObject({ store: 'postgres' });
      const c = createClient(AuthService, String(started.address));
      await eventually(async () => c.register({ username: 'multi', password: PASSWORD }).then(() => true, () => false), { timeoutMs: 10_000, intervalMs: 100 });
      c.close();
    });
  }, 30_000);

  test('the documented operator commands run against the database', async () => {
    const url = await pg.createDatabase();
    const env = { PATH: process.env.PATH ?? '', AUTH_DATABASE_URL: url };
    for (const line of commandLines(docBlock('docs/postgresql.md', 'operators'))) {
      const [node, ...args] = argvOf(line.argv);
      const r = spawnSync(node!, args, { env, encoding: 'utf8' });
      expect({ command: line.argv.join(' '), status: r.status, stderr: r.stderr }).toEqual({ command: line.argv.join(' '), status: 0, stderr: '' });
    }
  }, 30_000);

  describeNeeding(['pgbouncer'], 'behind PgBouncer', () => {
    test('the documented pgbouncer=true URL serves through Debian\'s PgBouncer in transaction mode', async () => {
      const [line] = commandLines(docBlock('docs/postgresql.md', 'pgbouncer-url'));
      const bouncer = await startPgBouncer(pg);
      try {
        const database = new URL(await pg.createDatabase()).pathname;
        line!.env.AUTH_DATABASE_URL = line!.env.AUTH_DATABASE_URL!.replace(/@pgbouncer\.internal:6432\/auth/, `@127.0.0.1:${bouncer.port}${database}`);
        expect(line!.env.AUTH_DATABASE_URL).toMatch(/\?pgbouncer=true$/);
        await startsAndStops(line!, async (started) => {
          const c = createClient(AuthService, String(started.address));
          await c.register({ username: 'pooled', password: PASSWORD });
          expect((await c.login({ username: 'pooled', password: PASSWORD })).accessToken).not.toBe('');
          c.close();
        });
      } finally {
        await bouncer.stop();
      }
    }, 30_000);
  });
});
