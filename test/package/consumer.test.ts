import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describeWithPostgres } from '../helpers/postgres';
import { startProcess } from '../helpers/process';
import { productionCommands, startThenTerminate } from '../helpers/production';
import { describeWithRedis } from '../helpers/redis';

const ROOT = join(__dirname, '..', '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const readme = readFileSync(join(ROOT, 'docs', 'sdk.md'), 'utf8');
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
/** The packed package as docs/sdk.md's install line names it. */
const PACKED = /^(\.\/)?grpc-auth-service-(\d+\.\d+\.\d+)\.tgz$/;

/** docs/sdk.md's consumer blocks, in order: `<!-- consumer:KIND [path] -->` and the fence under it. */
function consumerBlocks(): Array<{ kind: string; path: string | undefined; body: string }> {
  const blocks = [];
  for (const m of readme.matchAll(/<!-- consumer:(\w+)(?: (\S+))? -->\n```\w*\n([\s\S]*?)```/g)) blocks.push({ kind: m[1]!, path: m[2], body: m[3]! });
  return blocks;
}

/** How the consumer's TypeScript is compiled and run: module system and module resolution. */
const VARIANTS = [
  { name: 'CommonJS, node16', type: 'commonjs', module: 'node16', moduleResolution: 'node16' },
  { name: 'ES modules, node16', type: 'module', module: 'node16', moduleResolution: 'node16' },
  { name: 'ES modules, bundler resolution', type: 'module', module: 'esnext', moduleResolution: 'bundler' },
] as const;

/** The packages the consumer steps' `npm install` lines name, with the version each gives (or ''). */
function installedByReadme(): Map<string, string> {
  const named = new Map<string, string>();
  for (const block of consumerBlocks().filter((b) => b.kind === 'sh')) {
    for (const line of block.body.split('\n').filter((l) => l.startsWith('npm install'))) {
      for (const word of line.split(/\s+/).slice(2).filter((w) => !w.startsWith('-'))) {
        if (PACKED.test(word)) {
          named.set('grpc-auth-service', PACKED.exec(word)![2]!);
          continue;
        }
        const at = word.indexOf('@', 1);
        named.set(at < 0 ? word : word.slice(0, at), at < 0 ? '' : word.slice(at + 1));
      }
    }
  }
  return named;
}

const FIXTURE = join(ROOT, 'test', 'fixtures', 'consumer');
const fixture = JSON.parse(readFileSync(join(FIXTURE, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
const pinned = { ...fixture.dependencies, ...fixture.devDependencies };

/**
 * CONSUMER_FROM_REGISTRY=1 runs the npm lines of docs/sdk.md as written, with whatever the registry
 * serves today (a non-blocking CI step: it warns of a new TypeScript before a user meets it).
 * Otherwise the same packages come from test/fixtures/consumer's lockfile, so what the registry
 * publishes tomorrow cannot turn this suite red.
 */
const FROM_REGISTRY = process.env.CONSUMER_FROM_REGISTRY === '1';

/** The TypeScript compilers the consumer's code must compile with: the pinned current one and the 5.x line. */
const COMPILERS = FROM_REGISTRY ? ['typescript'] : ['typescript', 'typescript-5'];

test("the consumer steps install exactly the packages the fixture's lockfile pins, and the package file `npm pack` makes of this release", () => {
  const named = installedByReadme();
  expect(named.get('grpc-auth-service')).toBe(version);
  expect([...named.keys()].sort()).toEqual(Object.keys(pinned).filter((n) => n !== 'typescript-5').sort());
  for (const [name, version] of named) if (version && name !== 'grpc-auth-service') expect({ name, version: pinned[name] }).toEqual({ name, version });
});

/**
 * docs/sdk.md's "Protect your own service, step by step", run as written in a new project: the
 * packed package installed from its tarball (the one change to its commands: the package
 * comes from the tarball instead of a registry), the other packages from the fixture's lockfile,
 * the proto generated with buf, then the same sources compiled and run as CommonJS and as ES
 * modules, with TypeScript 7 and 5.
 */
describe("the consumer steps of docs/sdk.md, in a new project", () => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-consumer-'));
  const project = join(dir, 'app');
  let tarball: string;
  // The project's node_modules is about 250 MB: left behind, every run would keep its own.
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeAll(() => {
    // The global setup has built dist/ (both forms); --ignore-scripts keeps prepack from
    // rebuilding it under the feet of other test files that run the built service.
    execFileSync(npm, ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, stdio: 'pipe' });
    tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
    mkdirSync(project);
    const npmQuiet = ['--no-audit', '--no-fund', '--silent'];
    if (FROM_REGISTRY) writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'orders', version: '1.0.0', private: true }));
    else {
      cpSync(join(FIXTURE, 'package.json'), join(project, 'package.json'));
      cpSync(join(FIXTURE, 'package-lock.json'), join(project, 'package-lock.json'));
      cpSync(tarball, join(project, 'grpc-auth-service.tgz'));
      execFileSync(npm, ['ci', ...npmQuiet], { cwd: project, stdio: 'pipe', timeout: 300_000 });
    }
    for (const block of consumerBlocks()) {
      if (block.kind === 'file') {
        mkdirSync(join(project, dirname(block.path!)), { recursive: true });
        writeFileSync(join(project, block.path!), block.body);
      }
      if (block.kind === 'sh') {
        for (const line of block.body.split('\n').filter(Boolean)) {
          const [command, ...args] = line.split(/\s+/).map((w) => (PACKED.test(w) ? tarball : w));
          if (command === 'npm' && !FROM_REGISTRY) continue; // installed above, from the lockfile
          execFileSync(command === 'npm' ? npm : command === 'npx' ? 'npx' : command!, [...args, ...(command === 'npm' ? npmQuiet : [])], { cwd: project, stdio: 'pipe', timeout: 300_000 });
        }
      }
    }
  }, 600_000);

  test('the package is publishable as it is: a license, not private, source maps that carry their sources', () => {
    const installed = join(project, 'node_modules', 'grpc-auth-service');
    expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toContain('Apache License');
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { private?: boolean; license: string };
    expect(pkg).toMatchObject({ license: 'Apache-2.0' });
    expect(pkg.private).toBeUndefined();
    for (const map of ['dist/src/index.js.map', 'dist/src/sdk/client.js.map', 'dist/esm/src/sdk/interceptor.js.map']) {
      const parsed = JSON.parse(readFileSync(join(installed, map), 'utf8')) as { sources: string[]; sourcesContent?: string[] };
      expect(parsed.sourcesContent).toHaveLength(parsed.sources.length);
      expect(parsed.sourcesContent!.every((s) => s.length > 0)).toBe(true);
    }
  });

  test('buf generated the consumer code and the options it imports', () => {
    expect(existsSync(join(project, 'src', 'gen', 'orders', 'v1', 'orders_pb.ts'))).toBe(true);
    expect(existsSync(join(project, 'src', 'gen', 'auth', 'v1', 'options_pb.ts'))).toBe(true);
  });

  const expected = JSON.parse(consumerBlocks().find((b) => b.kind === 'output')!.body) as unknown;

  test.each(VARIANTS)('$name: compiles and prints what docs/sdk.md says', ({ type, module, moduleResolution }) => {
    const variant = join(project, `variant-${type}-${moduleResolution}`);
    cpSync(join(project, 'src'), join(variant, 'src'), { recursive: true });
    writeFileSync(join(variant, 'package.json'), JSON.stringify({ name: 'orders-variant', private: true, type }));
    const tsconfig = { compilerOptions: { strict: true, target: 'es2022', module, moduleResolution, outDir: 'out', rootDir: 'src', skipLibCheck: false, types: ['node'] }, include: ['src'] };
    // The CommonJS variant is the tsconfig.json the docs give a project that has none.
    if (type === 'commonjs') expect(JSON.parse(readFileSync(join(project, 'tsconfig.json'), 'utf8'))).toEqual(tsconfig);
    writeFileSync(join(variant, 'tsconfig.json'), JSON.stringify(tsconfig));
    // Every compiler type-checks the package's .d.ts (skipLibCheck: false); the last one's output runs.
    for (const compiler of COMPILERS) {
      const tsc = spawnSync(process.execPath, [join(project, 'node_modules', compiler, 'bin', 'tsc'), '-p', variant], { cwd: variant, encoding: 'utf8' });
      expect({ compiler, status: tsc.status, output: tsc.stdout + tsc.stderr }).toEqual({ compiler, status: 0, output: '' });
    }
    // In an ES module app, the CommonJS build of @bufbuild/protobuf must never load beside the ESM one.
    const probe = join(variant, 'probe.mjs');
    writeFileSync(probe, `import { createRequire } from 'node:module';\nprocess.on('exit', () => { const cjs = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('@bufbuild')); if (cjs.length) console.error('CommonJS copies loaded: ' + cjs.join(' ')); });\n`);
    const out = execFileSync(process.execPath, ['--import', probe, join('out', 'main.js')], { cwd: variant, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    expect(JSON.parse(out)).toEqual(expected);
  }, 120_000);

  test.each(['variant-module-node16', 'variant-module-bundler'])('%s: an ES module app loads no CommonJS copy of @bufbuild/protobuf', (name) => {
    const variant = join(project, name);
    const run = spawnSync(process.execPath, ['--import', join(variant, 'probe.mjs'), join('out', 'main.js')], { cwd: variant, encoding: 'utf8', timeout: 60_000 });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
  }, 60_000);

  /**
   * The installed package's own command, from node_modules, on each store: PostgreSQL migrated by
   * `grpc-auth migrate` (the SQL files ship in the package) and then served with migrations off,
   * Redis and memory served; each answers `grpc-auth health` with SERVING and stops on SIGTERM.
   */
  describe('the installed package serves every store from node_modules', () => {
    const bin = () => join(project, 'node_modules', '.bin', 'grpc-auth');
    const cli = (args: string[], env: Record<string, string>) => spawnSync(bin(), args, { cwd: project, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH ?? '', ...env } });
    async function servesAndStops(env: Record<string, string>, store: string) {
      const running = await startProcess(env, { argv: [bin(), 'serve'], cwd: project });
      try {
        expect(running.started).toMatchObject({ store, version: (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version });
        expect(cli(['health', '--address', String(running.started.address)], {})).toMatchObject({ status: 0, stdout: 'SERVING\n', stderr: '' });
      } finally {
        running.child.kill('SIGTERM');
      }
      expect(await running.exit).toBe(0);
    }

    test('memory', () => servesAndStops({}, 'memory'), 60_000);

    describeWithRedis('Redis', (redis) => {
      test('AUTH_REDIS_URL alone', () => servesAndStops({ AUTH_REDIS_URL: redis().url }, 'redis'), 60_000);
    });

    describeWithPostgres('PostgreSQL', (pg) => {
      test('grpc-auth migrate, then serve with AUTH_DATABASE_MIGRATE=off', async () => {
        const env = { AUTH_DATABASE_URL: await pg().createDatabase(), AUTH_DATABASE_MIGRATE: 'off' };
        expect(cli(['migrate', '--status'], env)).toMatchObject({ status: 0, stdout: expect.stringMatching(/^schema version 0; this release knows \d+ \(run grpc-auth migrate\)\n$/) });
        expect(cli(['migrate'], env)).toMatchObject({ status: 0, stdout: expect.stringMatching(/^applied migrations 1, 2, 3/), stderr: '' });
        await servesAndStops(env, 'postgres');
      }, 60_000);
    });
  });

  test.each([1, 2])("SIGTERM to production command %i of docs/production.md, run from the installed package: exit 0", async (index) => {
    const argv = productionCommands()[index]!;
    const { code, signal, events, stderr } = await startThenTerminate(argv, project);
    expect({ code, signal, events: events.slice(-2), stderr }).toEqual({ code: 0, signal: null, events: ['stopping', 'stopped'], stderr: '' });
  }, 60_000);
});
