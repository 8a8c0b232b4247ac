import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { generateEcPem } from '../../src/core/keys';
import { createClient } from '../../src/grpc/client';
import { knownMigrations } from '../../src/store/postgres/migrations';
import { sample, scrape } from '../helpers/metrics';
import { startPostgres, type TestPostgres } from '../helpers/postgres';
import { startProcess, type Running } from '../helpers/process';
import { startRedis, type TestRedis } from '../helpers/redis';
import { describeNeeding } from '../helpers/requires';
import { PASSWORD } from '../helpers/server';
import { eventually } from '../helpers/wait';

/*
 * The operators' commands against a running deployment's shared store, as its runbook uses them:
 * maintenance, revoke every session, list users, store figures. On Redis and on PostgreSQL.
 */

const CLI = join(__dirname, '..', '..', 'dist', 'src', 'cli', 'main.js');
const cli = (args: string[], env: Record<string, string>) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
// The maintenance command waits for every instance: the service under test must keep answering meanwhile.
const cliAsync = async (args: string[], env: Record<string, string>) => {
  const r = await promisify(execFile)(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
  return { out: r.stdout, err: r.stderr };
};

describeNeeding(['redis-server', 'postgresql'], 'operator commands', () => {
  let pg: TestPostgres;
  let redis: TestRedis;
  const running: Running[] = [];
  let keyFile: string;
  beforeAll(async () => {
    pg = await startPostgres();
    redis = await startRedis();
    keyFile = join(mkdtempSync(join(tmpdir(), 'auth-ops-')), 'signing.pem');
    writeFileSync(keyFile, generateEcPem());
  }, 60_000);
  afterAll(async () => {
    for (const r of running) r.child.kill('SIGKILL');
    await Promise.all(running.map((r) => r.exit));
    await redis?.stop();
    await pg?.destroy();
  });

  test('on the memory store each says it needs a shared store (exit 2)', () => {
    for (const args of [['users', 'list'], ['sessions', 'revoke-all'], ['store', 'stats'], ['maintenance', 'status']]) {
      expect(cli(args, {})).toMatchObject({ code: 2, err: expect.stringMatching(/acts on a shared store: the memory store lives inside one service process/) as string });
    }
    expect(cli(['users', 'list', '--limit', '0'], {})).toMatchObject({ code: 2, err: expect.stringMatching(/--limit must be a whole number above 0/) as string });
    expect(cli(['sessions', 'revoke'], {})).toMatchObject({ code: 2, err: expect.stringMatching(/^grpc-auth: usage: grpc-auth sessions revoke-all/) as string });
  });

  test.each([
    { store: 'PostgreSQL', env: async () => ({ AUTH_DATABASE_URL: await pg.createDatabase() }) },
    { store: 'Redis', env: async () => ({ AUTH_REDIS_URL: redis.url, AUTH_REDIS_KEY_PREFIX: `ops${Date.now()}:` }) },
  ])('$store: users list, store stats, maintenance, sessions revoke-all against a running instance', async ({ store, env: makeEnv }) => {
    const env = { ...(await makeEnv()), AUTH_SIGNING_KEY_FILE: keyFile, AUTH_STORE_TIMEOUT: '1s', AUTH_DATABASE_STATEMENT_TIMEOUT_MS: '250', AUTH_REDIS_COMMAND_TIMEOUT_MS: '250' };
    const instance = await startProcess({ ...env, AUTH_LOG_LEVEL: 'info', AUTH_METRICS_ADDRESS: '127.0.0.1:0' });
    running.push(instance);
    const auth = createClient(AuthService, String(instance.started.address));
    const sessions = [];
    for (const username of ['carol', 'alice', 'bob']) {
      await auth.register({ username, password: PASSWORD });
      sessions.push(await auth.login({ username, password: PASSWORD }));
    }

    const listed = cli(['users', 'list'], env);
    expect(listed.code).toBe(0);
    expect(listed.out.split('\n').filter(Boolean).map((l) => l.split('\t')[0])).toEqual(['alice', 'bob', 'carol']);
    expect(listed.out.split('\n')[0]).toMatch(/^alice\tusr_[A-Za-z0-9_-]{22}\t-\tenabled\tapi$/);
    const json = cli(['users', 'list', '--prefix', 'b', '--json'], env);
    expect(json.out.split('\n').filter(Boolean).map((l) => JSON.parse(l))).toEqual([{ id: expect.stringMatching(/^usr_/) as string, username: 'bob', roles: [], disabled: false, origin: 'api', createdAt: expect.any(String) as string }]);
    expect(cli(['users', 'list', '--limit', '2'], env).out.split('\n').filter(Boolean)).toHaveLength(2);

    const stats = JSON.parse(cli(['store', 'stats'], env).out) as Record<string, unknown>;
    if (store === 'PostgreSQL') {
      expect(stats).toMatchObject({ store: 'postgres', schemaVersion: knownMigrations().length, rows: { users: 3, sessions: 3 }, oldestSession: expect.any(String) as string, writer: { pooler: false } });
    } else {
      expect(stats).toMatchObject({ store: 'redis', users: 3, serviceAccounts: 0, keys: expect.any(Number) as number, usedMemoryBytes: expect.any(Number) as number });
    }

    // Maintenance: writes refused with a clear UNAVAILABLE, tokens still validate, and back.
    expect(cli(['maintenance', 'status'], env).out).toBe('off\n');
    const on = await cliAsync(['maintenance', 'on'], env);
    expect(on.out).toBe('maintenance on: every instance refuses writes; reads go on\n');
    expect(cli(['maintenance', 'status'], env).out).toBe('on\n');
    await expect(auth.register({ username: 'dave', password: PASSWORD })).rejects.toMatchObject({ code: 14, details: 'the service is read-only for a maintenance; retry shortly' });
    await expect(auth.refresh({ refreshToken: sessions[0]!.refreshToken })).rejects.toMatchObject({ code: 14 });
    expect((await auth.validate({ accessToken: sessions[0]!.accessToken })).active).toBe(true);
    const port = Number(instance.lines.find((l) => l.event === 'metrics_listening')!.port);
    expect(sample(await scrape(port), 'auth_maintenance')).toBe(1);
    expect(instance.lines.filter((l) => l.event === 'maintenance_started')).toHaveLength(1);
    expect(cli(['maintenance', 'off'], env)).toMatchObject({ code: 0 });
    await eventually(async () => auth.register({ username: 'dave', password: PASSWORD }).then(() => true, () => false), { timeoutMs: 5000, intervalMs: 100 });
    expect(instance.lines.filter((l) => l.event === 'maintenance_ended')).toHaveLength(1);

    // Every session ends; the users sign in again.
    expect(cli(['sessions', 'revoke-all'], env)).toMatchObject({ code: 0, out: 'ended the sessions of 4 users\n' });
    for (const s of sessions) {
      await expect(auth.refresh({ refreshToken: s.refreshToken })).rejects.toMatchObject({ code: 16 });
      expect((await auth.validate({ accessToken: s.accessToken })).active).toBe(false);
    }
    await expect(auth.login({ username: 'alice', password: PASSWORD })).resolves.toMatchObject({ tokenType: 'Bearer' });
    auth.close();
  }, 60_000);
});
