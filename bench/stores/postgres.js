'use strict';
// The PostgreSQL store beside the memory store: the same calls in the same rounds, PostgreSQL's
// bytes per row, and a ListUsers page at 1,000,000 users, on a throw-away local server.
const { execFileSync, spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client } = require('pg');
const { freePort, startService } = require('../lib/service.js');
const { dist, listUsersPageMs, randomId, randomPhc, ratioFigure } = require('../lib/measure.js');
const { loginOn, refreshOn, storeFixtures, validateOn } = require('../fixtures.js');

/** Debian's PostgreSQL server programs (under /usr/lib/postgresql/<major>/bin), or on PATH. */
function postgresBin(program) {
  const base = '/usr/lib/postgresql';
  if (fs.existsSync(base)) {
    for (const major of fs.readdirSync(base).filter((d) => /^\d+$/.test(d)).sort((a, b) => b - a)) {
      const p = path.join(base, major, 'bin', program);
      if (fs.existsSync(p)) return p;
    }
  }
  const found = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

/** A throw-away PostgreSQL on a free port (as nobody when root: initdb refuses root), as the tests start one. */
async function startPostgres() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pg-'));
  const asRoot = process.getuid() === 0;
  if (asRoot) fs.chownSync(dir, 65534, 65534);
  const as = (prog, args) => (asRoot ? ['runuser', ['-u', 'nobody', '--', prog, ...args]] : [prog, args]);
  const [icmd, iargs] = as(postgresBin('initdb'), ['-D', path.join(dir, 'data'), '-U', 'auth', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
  execFileSync(icmd, iargs, { stdio: 'ignore' });
  // Durable as a production server is (fsync on, synchronous commit): the figures include it.
  const [pcmd, pargs] = as(postgresBin('postgres'), ['-D', path.join(dir, 'data'), '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'shared_buffers=256MB', '-c', 'max_connections=100']);
  const child = spawn(pcmd, pargs, { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const kill = () => {
    try {
      process.kill(Number(fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGINT');
    } catch {
      child.kill('SIGKILL');
    }
  };
  // At an exit that cannot wait (an error): the server is told to stop, its directory stays.
  process.on('exit', kill);
  /** Stops the server, waits for it (a minute at most), and removes its directory (1 GB after the ListUsers figure). */
  const stop = async () => {
    process.removeListener('exit', kill);
    if (child.exitCode === null && child.signalCode === null) {
      kill();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 60_000).unref())]);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const c = new Client({ host: '127.0.0.1', port, user: 'auth', database: 'postgres' });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (err) {
      await c.end().catch(() => {});
      if (i > 300) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const url = `postgres://auth@127.0.0.1:${port}/postgres`;
  // pid: the process whose tree is the server (runuser when root), for the database's CPU.
  return { url, pid: child.pid, stop };
}

/**
 * Login, Validate and Refresh on a service whose store is a local PostgreSQL, each against the
 * same call on the memory-store service in the same run; PostgreSQL's bytes per user and per
 * session (relation sizes, indexes included); a ListUsers page at 1,000,000 users vs at 1,000.
 */
async function postgresFigures(results, memoryService) {
  const pg = await startPostgres();
  const service = await startService({ env: { AUTH_DATABASE_URL: pg.url, AUTH_REGISTER_PER_ADDRESS: '1000000', AUTH_REGISTER_PER_MINUTE: '1000000' } });
  try {
    const onPg = await storeFixtures(service, 'pg-bench');
    const onMemory = await storeFixtures(memoryService, 'pg-bench');
    console.log('measuring Validate on PostgreSQL vs memory ...');
    await ratioFigure(results, 'Validate, token seen before: PostgreSQL store vs memory store', 0.7, validateOn(service, onPg.token), validateOn(memoryService, onMemory.token));
    console.log('measuring Refresh on PostgreSQL vs memory ...');
    await ratioFigure(results, 'Refresh: PostgreSQL store vs memory store', 0.6, refreshOn(service, onPg), refreshOn(memoryService, onMemory));
    // Login: each user logging in its own sequence (argon2id sets the pace on both).
    console.log('measuring Login on PostgreSQL vs memory ...');
    await ratioFigure(results, 'Login: PostgreSQL store vs memory store', 0.8, loginOn(service, 'pg-bench'), loginOn(memoryService, 'pg-bench'));
  } finally {
    await service.stop();
  }

  console.log('measuring PostgreSQL bytes per user and per session, and ListUsers at 1,000,000 users ...');
  const admin = new Client({ connectionString: pg.url });
  await admin.connect();
  await admin.query('CREATE DATABASE bench_sizes');
  await admin.end();
  const url = pg.url.replace(/\/postgres$/, '/bench_sizes');
  const { PostgresStore } = dist('src/store/postgres/postgres-store.js');
  const store = new PostgresStore({ connection: { url, poolSize: 10 }, statementTimeoutMs: 30_000, accessGraceMs: 930_000, maxSessionsPerUser: 100, migrate: 'auto' });
  await store.connect();
  const sql = new Client({ connectionString: url });
  await sql.connect();
  const size = async (table) => Number((await sql.query('SELECT pg_total_relation_size($1) AS b', [table])).rows[0].b);
  const id = randomId;
  const phc = randomPhc;
  const USERS = 10_000;
  const PER_USER = 10;
  const usersBefore = await size('auth_users');
  const userIds = [];
  for (let i = 0; i < USERS; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, async (_, k) => {
        const user = { id: id('usr'), username: `user${String(i + k).padStart(7, '0')}`, passwordHash: phc(), roles: ['user'], disabled: false, origin: 'api' };
        await store.createUser(user, { skeleton: user.username });
        userIds.push(user.id);
      }),
    );
  }
  await sql.query('VACUUM ANALYZE auth_users');
  const perUser = ((await size('auth_users')) - usersBefore) / USERS;
  const sessionsBefore = await size('auth_sessions');
  for (let i = 0; i < USERS; i += 100) {
    await Promise.all(
      userIds.slice(i, i + 100).flatMap((userId) =>
        Array.from({ length: PER_USER }, () => {
          const sessionId = id('ses');
          return store.createSession({ userId, sessionId, userGeneration: 0, refreshHash: crypto.createHash('sha256').update(sessionId).digest('base64url'), refreshTtlMs: 1_209_600_000, sessionMaxAgeMs: 2_592_000_000, clientAddress: '10.1.2.3', amr: ['pwd'], userAgent: 'grpc-node-js/1.14.7' });
        }),
      ),
    );
  }
  await sql.query('VACUUM ANALYZE auth_sessions');
  const perSession = ((await size('auth_sessions')) - sessionsBefore) / (USERS * PER_USER);
  results.figures.push({ name: 'PostgreSQL store, 10,000 users', unit: 'bytes of table and indexes per user', value: perUser, limit: 1000, met: perUser <= 1000 });
  results.figures.push({ name: 'PostgreSQL store, 100,000 live sessions (10 a user)', unit: 'bytes of table and indexes per session', value: perSession, limit: 700, met: perSession <= 700 });

  await sql.query('DELETE FROM auth_users');
  const fill = (from, to) =>
    sql.query(
      `INSERT INTO auth_users (id, username, password_hash, roles, disabled, generation, revision, origin, created_at, password_changed_at)
       SELECT 'usr_' || lpad(i::text, 22, '0'), 'user' || lpad(i::text, 7, '0'), $3, '{user}', false, 0, 1, 'api', 0, 0 FROM generate_series($1::int, $2::int) i`,
      [from, to, phc()],
    );
  await fill(0, 2999);
  await sql.query('VACUUM ANALYZE auth_users');
  const small = await listUsersPageMs(store, 3000);
  await fill(3000, 999_999);
  await sql.query('VACUUM ANALYZE auth_users');
  const large = await listUsersPageMs(store, 1_000_000);
  results.figures.push({ name: 'ListUsers, a page of 1,000 at 1,000,000 users (PostgreSQL store) vs at 3,000 users', unit: 'ms a page', value: large, baseline: small, ratio: large / small, spread: [large / small, large / small], limit: 2, met: large / small <= 2 });
  await sql.end();
  await store.close();
  await pg.stop();
}

module.exports = { postgresBin, postgresFigures, startPostgres };
