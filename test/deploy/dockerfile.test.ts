import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { generateEcPem } from '../../src/core/keys';
import { ROOT } from '../helpers/process';
import { freePort } from '../helpers/redis';

/**
 * No container engine runs here (docker build needs a daemon), so the Dockerfile's own steps run
 * in clean directories instead: each stage's COPY from this checkout (or the earlier stage), each
 * RUN in the stage's WORKDIR, then the image's ENTRYPOINT and CMD with its ENV, as a user that
 * is not root and cannot write to the application's files, and its HEALTHCHECK against it. What
 * this does not prove: the base image's own contents, and a real read-only root file system.
 */
interface Stage {
  readonly name: string;
  readonly from: string;
  readonly steps: Array<{ op: string; args: string }>;
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  // Continuation lines join; comments and blank lines go.
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op === 'FROM') {
      const [image, , name] = args.split(/\s+/);
      stages.push({ name: name ?? `stage${stages.length}`, from: image!, steps: [] });
    } else stages.at(-1)!.steps.push({ op: op!, args });
  }
  return stages;
}

const jsonArgs = (args: string) => JSON.parse(args.replace(/^--\S+\s+/g, '').replace(/^.*?(\[)/, '[')) as string[];

describe('the Dockerfile, built step by step in clean directories', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stages = parseDockerfile(dockerfile);
  const roots = new Map<string, string>();
  let env: Record<string, string> = {};
  let workdir = '/';
  let entry: string[] = [];
  let cmd: string[] = [];
  let healthcheck: string[] = [];
  let user = '';
  /** Directories made outside the stages' roots (the mounted secrets). */
  const scratch: string[] = [];

  // Each stage's root holds a copy of node_modules (about 550 MB): made writable again (a test
  // takes write access away) and removed, or every run would leave them in the temp directory.
  afterAll(() => {
    for (const dir of [...roots.values(), ...scratch]) {
      // spawnSync: a chmod that fails leaves the rest to rmSync and the other directories still go.
      spawnSync('chmod', ['-R', 'u+w', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  beforeAll(() => {
    for (const stage of stages) {
      const root = mkdtempSync(join(tmpdir(), `image-${stage.name}-`));
      chmodSync(root, 0o755);
      roots.set(stage.name, root);
      env = {};
      for (const { op, args } of stage.steps) {
        const at = (p: string) => join(root, p.startsWith('/') ? p : join(workdir, p));
        switch (op) {
          case 'WORKDIR':
            workdir = args;
            mkdirSync(at('.'), { recursive: true });
            break;
          case 'ENV':
            for (const [, k, v] of args.matchAll(/(\w+)=(\S+)/g)) env[k!] = v!;
            break;
          case 'COPY': {
            const from = /^--from=(\S+)\s+/.exec(args);
            const parts = args.replace(/^--from=\S+\s+/, '').split(/\s+/);
            const dest = parts.pop()!;
            for (const src of parts) {
              const source = from ? join(roots.get(from[1]!)!, src) : join(ROOT, src);
              const target = dest.endsWith('/') || parts.length > 1 ? join(at(dest), src.split('/').pop()!) : at(dest);
              mkdirSync(dirname(target), { recursive: true });
              cpSync(source, target, { recursive: true });
            }
            break;
          }
          case 'RUN':
            execFileSync('bash', ['-c', args], { cwd: at('.'), stdio: 'pipe', env: { PATH: process.env.PATH ?? '', HOME: root, ...env }, timeout: 300_000 });
            break;
          case 'USER':
            user = args;
            break;
          case 'HEALTHCHECK':
            healthcheck = jsonArgs(args.slice(args.indexOf('CMD') + 4));
            break;
          case 'ENTRYPOINT':
            entry = jsonArgs(args);
            break;
          case 'CMD':
            cmd = jsonArgs(args);
            break;
          case 'EXPOSE':
            break;
          default:
            throw new Error(`the emulation does not know ${op}`);
        }
      }
    }
  }, 600_000);

  test('two stages on the Node 20 image the package supports; the runtime installs production dependencies only, from the lockfile', () => {
    expect(stages.map((s) => s.from)).toEqual(['node:20-bookworm-slim', 'node:20-bookworm-slim']);
    expect(stages[1]!.steps).toContainEqual({ op: 'RUN', args: expect.stringMatching(/^npm ci --omit=dev /) });
    const app = join(roots.get(stages[1]!.name)!, 'app');
    expect(readdirSync(join(app, 'node_modules'))).not.toContain('typescript');
    expect(readdirSync(join(app, 'node_modules'))).toContain('@grpc');
    expect(user).toBe('node');
  });

  test('the image runs its ENTRYPOINT and CMD as another user on files it cannot write, answers its HEALTHCHECK, and stops on SIGTERM', async () => {
    const app = join(roots.get(stages[1]!.name)!, workdir);
    // A user that is not root and owns nothing of /app (the image's `node` is uid 1000; here nobody).
    execFileSync('chmod', ['-R', 'a-w,a+rX', app]);
    const port = await freePort();
    // In production mode, as `docker run -e ...` would give it: a key file mounted read-only.
    const secrets = mkdtempSync(join(tmpdir(), 'image-secrets-'));
    scratch.push(secrets);
    chmodSync(secrets, 0o755);
    writeFileSync(join(secrets, 'signing.pem'), generateEcPem(), { mode: 0o444 });
    const runEnv: Record<string, string> = { PATH: process.env.PATH ?? '', ...env, AUTH_ADDRESS: `0.0.0.0:${port}`, AUTH_ISSUER: 'https://auth.example.com', AUTH_AUDIENCE: 'backend', AUTH_SIGNING_KEY_FILE: join(secrets, 'signing.pem'), AUTH_ALLOW_INSECURE: 'true' };
    expect(runEnv.NODE_ENV).toBe('production');
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const [program, ...args] = [...entry, ...cmd];
    const child = spawn(program === 'node' ? process.execPath : program!, args, { cwd: app, env: runEnv, ...asUser });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      for (let i = 0; i < 200 && !out.includes('"event":"started"'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain('"event":"started"');
      const [hc, ...hcArgs] = healthcheck;
      const probe = spawnSync(hc === 'node' ? process.execPath : hc!, hcArgs, { cwd: app, env: runEnv, encoding: 'utf8', ...asUser });
      expect({ status: probe.status, stdout: probe.stdout, stderr: probe.stderr }).toEqual({ status: 0, stdout: 'SERVING\n', stderr: '' });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await new Promise((r) => child.on('close', r))).toBe(0);
    expect(err).toBe('');
    // It wrote nothing into the application's directory.
    expect(statSync(join(app, 'dist')).mode & 0o222).toBe(0);
  }, 60_000);
});
