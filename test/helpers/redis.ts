import { spawn, type ChildProcess } from 'node:child_process';
import { describeNeeding } from './requires';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';


export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A free loopback port below the kernel's ephemeral range, with port + 10000 (a Cluster node's
 * bus port) free and below it too: for a server stopped and started again on its port (a Cluster
 * node, PostgreSQL). A port of
 * the ephemeral range (freePort's) can be taken meanwhile by any outgoing connection's local port,
 * and the restart then fails with "Address already in use" (seen in npm test on a bus port).
 */
export async function freePortToKeep(): Promise<number> {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: the IANA default range starts at 49152, above this one
  }
  for (let i = 0; i < 500; i++) {
    const port = 10_000 + Math.floor(Math.random() * Math.max(1, low - 20_000));
    if ((await canBind(port)) && (await canBind(port + 10_000))) return port;
  }
  throw new Error('no free port pair below the ephemeral range');
}

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts a throw-away redis-server on a free loopback port (no persistence) and waits until it
 * serves. A primary starts its replicas' first sync at once (Redis waits 5 s by default).
 */
export async function startRedis(port?: number, extraArgs: string[] = []): Promise<TestRedis> {
  const p = port ?? (await freePort());
  // Its own directory: a replica writes the primary's snapshot there (dump.rdb), never in the repo.
  const dir = mkdtempSync(join(tmpdir(), 'auth-redis-'));
  const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0', ...extraArgs], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
  });
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.on('exit', () => resolve());
        child.kill('SIGKILL');
      }).then(() => rmSync(dir, { recursive: true, force: true })),
  };
}

/**
 * Describes a Redis-backed suite, run against a real redis-server started on a free port for it.
 * Without the binary the suite fails with the install command (see describeNeeding).
 */
export function describeWithRedis(name: string, body: (redis: () => TestRedis) => void): void {
  describeNeeding(['redis-server'], name, () => {
    let redis: TestRedis | undefined;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });
    body(() => redis!);
  });
}
