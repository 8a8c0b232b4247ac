import { spawn, type ChildProcess } from 'node:child_process';
import { describeNeeding } from './requires';
import { mkdtempSync, rmSync } from 'node:fs';
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
