import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** True when a redis-server binary is on PATH. */
export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

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

/** Starts a throw-away redis-server on a free loopback port (no persistence) and waits until it serves. */
export async function startRedis(port?: number, extraArgs: string[] = []): Promise<TestRedis> {
  const p = port ?? (await freePort());
  const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: ['ignore', 'pipe', 'ignore'] });
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
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.on('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/**
 * Describes a Redis-backed suite: runs it against a real redis-server when the binary is on PATH;
 * otherwise skips it with a visible notice locally, and fails in CI, where it must be installed.
 */
export function describeWithRedis(name: string, body: (redis: () => TestRedis) => void): void {
  if (!redisServerAvailable()) {
    if (process.env.CI) {
      test(`${name}: redis-server must be installed in CI`, () => {
        throw new Error('redis-server is not on PATH; .ci/run installs it with apt-get');
      });
    } else {
      // eslint-disable-next-line no-console
      console.warn(`NOTICE: redis-server is not on PATH, so "${name}" is SKIPPED. Install it (apt-get install redis-server) to run it.`);
      describe.skip(name, () => test('needs redis-server', () => {}));
    }
    return;
  }
  describe(name, () => {
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
