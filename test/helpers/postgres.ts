import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortToKeep } from './redis';
import { describeNeeding } from './requires';
import { Client as PgClient } from 'pg';

/**
 * Where Debian's PostgreSQL server programs are: on PATH, or under /usr/lib/postgresql/<major>/bin
 * (the package puts only the clients on PATH). The newest major wins.
 */
export function postgresBin(program: 'initdb' | 'postgres' | 'pg_ctl' | 'pg_dump' | 'psql' | 'pg_basebackup'): string | undefined {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const majors = readdirSync(base).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a));
    for (const major of majors) {
      const path = join(base, major, 'bin', program);
      if (existsSync(path)) return path;
    }
  }
  const found = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

export interface TestPostgres {
  /** postgres://auth@127.0.0.1:<port>/auth (trust authentication on loopback: a throw-away server). */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** A new empty database on this server, and its URL (each suite or test its own). */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server (fast shutdown, or SIGKILL of the postmaster when `kill`). */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Starts it again on the same port and data, after stop(). */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
  /**
   * Freezes the server (SIGSTOP to the postmaster and every backend): connections stay open and
   * statements sent meanwhile wait in their sockets, to run when it thaws, as with a stalled host.
   */
  freeze(): void;
  /** Thaws it (SIGCONT): what was sent meanwhile runs now. */
  thaw(): void;
  /** A standby's promotion to primary (pg_promote), waited for. */
  promote(): Promise<void>;
}

/** initdb refuses to run as root: a root test run starts the server as `nobody`. */
export const asRoot = process.getuid?.() === 0;

export function runAs(program: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'nobody', '--', program, ...args]] : [program, args];
}

let databases = 0;

/**
 * Starts a throw-away PostgreSQL on a free loopback port, its data and socket in a temporary
 * directory. fsync is off (a test machine's crash loses nothing that matters), synchronous commit
 * stays on, so a restart or a SIGKILL of the server keeps every acknowledged write.
 */
export async function startPostgres(options: { tls?: { cert: string; key: string }; standbyOf?: TestPostgres } = {}): Promise<TestPostgres> {
  const initdb = postgresBin('initdb');
  const postgres = postgresBin('postgres');
  if (!initdb || !postgres) throw new Error('PostgreSQL server programs not found: apt-get install -y postgresql');
  // stop() and start() keep the port: one below the ephemeral range, which no outgoing connection takes meanwhile.
  const port = await freePortToKeep();
  const dir = mkdtempSync(join(tmpdir(), 'auth-pg-'));
  const dataDir = join(dir, 'data');
  if (asRoot) chownSync(dir, 65534, 65534);
  // A standby starts as a copy of its primary that streams from it (pg_basebackup -R writes
  // standby.signal and primary_conninfo); a primary from initdb.
  const [cmd, args] = options.standbyOf
    ? runAs(postgresBin('pg_basebackup')!, ['-D', dataDir, '-h', '127.0.0.1', '-p', String(options.standbyOf.port), '-U', 'auth', '-R', '-X', 'stream', '--no-sync', '--checkpoint=fast'])
    : runAs(initdb, ['-D', dataDir, '-U', 'auth', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
  const init = spawnSync(cmd, args, { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`${options.standbyOf ? 'pg_basebackup' : 'initdb'} failed: ${init.stderr}${init.stdout}`);
  const tlsArgs: string[] = [];
  if (options.tls) {
    // The server reads its key as its own user, and only a key no one else can read.
    for (const [from, to] of [[options.tls.cert, 'server.crt'], [options.tls.key, 'server.key']] as const) {
      copyFileSync(from, join(dir, to));
      chmodSync(join(dir, to), 0o600);
      if (asRoot) chownSync(join(dir, to), 65534, 65534);
    }
    tlsArgs.push('-c', 'ssl=on', '-c', `ssl_cert_file=${join(dir, 'server.crt')}`, '-c', `ssl_key_file=${join(dir, 'server.key')}`);
  }
  let child: ChildProcess | undefined;
  const start = async () => {
    const [pcmd, pargs] = runAs(postgres, [
      '-D', dataDir, '-p', String(port), '-h', '127.0.0.1', '-k', dir,
      '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200', '-c', 'shared_buffers=64MB',
      '-c', 'log_min_messages=fatal', '-c', 'logging_collector=off', ...tlsArgs,
    ]);
    const proc = spawn(pcmd, pargs, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    // Ready when it accepts a connection (pg_isready's job, done here with the client itself).
    const deadline = Date.now() + 30_000;
    const { Client } = await import('pg');
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`postgres exited ${proc.exitCode}: ${err}`);
      const client = new Client({ host: '127.0.0.1', port, user: 'auth', database: 'postgres', connectionTimeoutMillis: 1000 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        await client.end();
        return;
      } catch {
        await client.end().catch(() => {});
        if (Date.now() > deadline) throw new Error(`postgres did not start: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  /** The postmaster's pid, from its pid file (runuser does not pass signals on, so the server is signalled directly). */
  const postmasterPid = (): number | undefined => {
    try {
      return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return undefined;
    }
  };
  const stop = async (options: { kill?: boolean } = {}) => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
    const pid = postmasterPid();
    if (pid === undefined) proc.kill('SIGKILL');
    else if (options.kill) {
      // A crash: the postmaster and every backend at once (they would otherwise finish on their own).
      const backends = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
      for (const p of [pid, ...backends]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    } else process.kill(pid, 'SIGINT'); // PostgreSQL's fast shutdown
    await exited;
    if (options.kill) rmSync(join(dataDir, 'postmaster.pid'), { force: true });
  };
  /** The postmaster and its children (backends, background workers). */
  const serverPids = (): number[] => {
    const pid = postmasterPid();
    if (pid === undefined) return [];
    return [pid, ...spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number)];
  };
  const signalAll = (signal: NodeJS.Signals) => {
    // runuser stops itself when its child stops (as su does) and waits for a SIGCONT of its own.
    const launcher = signal === 'SIGCONT' && child?.pid !== undefined ? [child.pid] : [];
    for (const p of [...serverPids(), ...launcher]) {
      try {
        process.kill(p, signal);
      } catch {
        // gone meanwhile
      }
    }
  };
  await start();
  const url = `postgres://auth@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    dataDir,
    async createDatabase(name = `auth_test_${process.pid}_${++databases}`) {
      const { Client } = await import('pg');
      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://auth@127.0.0.1:${port}/${name}`;
    },
    stop,
    start,
    async promote() {
      const { Client } = await import('pg');
      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        await client.query('SELECT pg_promote(true, 30)');
      } finally {
        await client.end();
      }
    },
    freeze: () => signalAll('SIGSTOP'),
    thaw: () => signalAll('SIGCONT'),
    async destroy() {
      signalAll('SIGCONT');
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Describes a PostgreSQL-backed suite against a real server started for it on a free port.
 * Without the server programs the suite fails with the install command (see describeNeeding).
 */
export function describeWithPostgres(name: string, body: (pg: () => TestPostgres) => void): void {
  describeNeeding(['postgresql'], name, () => {
    let pg: TestPostgres | undefined;
    beforeAll(async () => {
      pg = await startPostgres();
    }, 60_000);
    afterAll(async () => {
      await pg?.destroy();
    });
    body(() => pg!);
  });
}

/** Records the text of every statement node-postgres's clients send, until `spy.mockRestore()`. */
export function recordStatements(): { sent: string[]; spy: jest.SpyInstance } {
  const sent: string[] = [];
  const query = PgClient.prototype.query as (...args: unknown[]) => unknown;
  const spy = jest.spyOn(PgClient.prototype, 'query').mockImplementation(function (this: PgClient, ...args: unknown[]) {
    const q = args[0];
    sent.push(typeof q === 'string' ? q : String((q as { text: string }).text));
    return query.apply(this, args) as never;
  });
  return { sent, spy };
}
