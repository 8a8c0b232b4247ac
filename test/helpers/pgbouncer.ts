import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asRoot, runAs, type TestPostgres } from './postgres';
import { freePort } from './redis';

export interface TestPgBouncer {
  readonly port: number;
  /** The URL of `database` through the pooler (a database of the PostgreSQL behind it). */
  url(databaseUrl: string): string;
  stop(): Promise<void>;
}

/**
 * Debian's PgBouncer on a free loopback port in front of `pg`, with its defaults but for what a
 * throw-away set-up needs (where to listen and log, trust for the test user): so with
 * `pool_mode = transaction`, no `ignore_startup_parameters` (it refuses statement_timeout and the
 * like at connect) and no prepared-statement support (1.18).
 */
export async function startPgBouncer(pg: TestPostgres, options: { poolMode?: 'transaction' | 'session' } = {}): Promise<TestPgBouncer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'auth-pgb-'));
  writeFileSync(join(dir, 'userlist.txt'), '"auth" ""\n');
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=127.0.0.1 port=${pg.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      `pool_mode = ${options.poolMode ?? 'transaction'}`,
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  if (asRoot) chownSync(dir, 65534, 65534);
  const [cmd, args] = runAs('/usr/sbin/pgbouncer', [join(dir, 'pgbouncer.ini')]);
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  // Ready when a client gets through it to the server.
  const { Client } = await import('pg');
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited ${child.exitCode}: ${err}`);
    const client = new Client({ host: '127.0.0.1', port, user: 'auth', database: 'postgres', connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      break;
    } catch {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw new Error(`pgbouncer did not start: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port,
    url: (databaseUrl) => databaseUrl.replace(`:${pg.port}/`, `:${port}/`),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
        // runuser does not pass signals on: PgBouncer itself is told to shut down.
        let pid: number | undefined;
        try {
          pid = Number(readFileSync(join(dir, 'pgbouncer.pid'), 'utf8').trim());
        } catch {
          pid = undefined;
        }
        if (pid) process.kill(pid, 'SIGINT');
        else child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
