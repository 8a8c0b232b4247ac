import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const STARTER = join(ROOT, 'examples', 'backend-starter');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/**
 * examples/backend-starter as a team copies it: the folder alone, the packed package in its
 * vendor/, everything else from its own lockfile (TypeScript 7, jest with @swc/jest); then its
 * own `npm test` (buf generate, jest with the test kit and a ManualClock) and `npm run build`
 * (tsc with skipLibCheck off).
 */
describe('examples/backend-starter, copied and installed from the packed package', () => {
  const copy = mkdtempSync(join(tmpdir(), 'starter-'));
  const project = join(copy, 'orders-backend');
  // The copy's node_modules is about 290 MB: left behind, every run would keep its own.
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  beforeAll(() => {
    cpSync(STARTER, project, { recursive: true, filter: (src) => !src.includes('node_modules') && !src.endsWith('/dist') && !src.includes('/src/gen') });
    const spec = (JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies['grpc-auth-service']!;
    const vendor = join(project, 'vendor');
    // --ignore-scripts: the global setup has built dist/ already (prepack would rebuild it under other tests).
    execFileSync(npm, ['pack', '--silent', '--ignore-scripts', '--pack-destination', vendor], { cwd: ROOT, stdio: 'pipe' });
    expect(readdirSync(vendor).filter((f) => f.endsWith('.tgz'))).toEqual([spec.replace('file:vendor/', '')]);
    execFileSync(npm, ['ci', '--no-audit', '--no-fund', '--silent'], { cwd: project, stdio: 'pipe', timeout: 300_000 });
  }, 600_000);

  test('its tests pass: the real auth service in-process, tokens expiring on a ManualClock, a service account calling in', () => {
    const run = spawnSync(npm, ['test', '--silent'], { cwd: project, encoding: 'utf8', timeout: 180_000 });
    expect({ status: run.status, output: run.status === 0 ? '' : run.stdout + run.stderr }).toEqual({ status: 0, output: '' });
    expect(run.stderr).toMatch(/Tests:\s+7 passed, 7 total/);
  }, 200_000);

  test('it builds with TypeScript 7 and skipLibCheck off', () => {
    const run = spawnSync(npm, ['run', 'build', '--silent'], { cwd: project, encoding: 'utf8', timeout: 120_000 });
    expect({ status: run.status, output: run.stdout + run.stderr }).toEqual({ status: 0, output: '' });
    expect(readdirSync(join(project, 'dist'))).toEqual(expect.arrayContaining(['main.js', 'orders.js', 'client.js']));
  }, 150_000);
});

test("docs/sdk.md shows the starter's jest set-up as it is", () => {
  const page = readFileSync(join(ROOT, 'docs', 'sdk.md'), 'utf8');
  const shown = /<!-- starter:file jest\.config\.js -->\n```js\n([\s\S]*?)```/.exec(page);
  expect(shown?.[1]).toBe(readFileSync(join(STARTER, 'jest.config.js'), 'utf8'));
});

test("the starter's README runs what this suite runs: npm ci, npm test, npm run build", () => {
  const readme = readFileSync(join(STARTER, 'README.md'), 'utf8');
  const block = /<!-- block: starter -->\n```sh\n([\s\S]*?)```/.exec(readme)![1]!;
  const commands = block.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);
  expect(commands).toEqual(['cp /path/to/grpc-auth-service-0.2.0.tgz vendor/', 'npm ci', 'npm test', 'npm run build && npm start']);
});
