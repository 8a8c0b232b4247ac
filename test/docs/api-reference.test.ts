import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ROOT } from '../helpers/process';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const TOOLS = join(ROOT, 'tools', 'api-docs');

/** Every file under `dir`, by path relative to it, with its text. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(dir, path)] = readFileSync(path, 'utf8');
    }
  };
  walk(dir);
  return out;
}

/**
 * docs/api/ is TypeDoc's reference of the SDK's entry points (client, interceptor, testing),
 * generated from their TSDoc comments: regenerated here with the TypeDoc its own lockfile pins,
 * it must come out the same, and no exported name may lack a comment (TypeDoc's notDocumented
 * validation, warnings as errors).
 */
test('docs/api/ is what TypeDoc makes of the SDK today, and every exported name is documented', () => {
  if (!existsSync(join(TOOLS, 'node_modules', '.bin', 'typedoc'))) {
    execFileSync(npm, ['ci', '--prefix', TOOLS, '--no-audit', '--no-fund', '--silent'], { cwd: ROOT, stdio: 'pipe', timeout: 300_000 });
  }
  const out = mkdtempSync(join(tmpdir(), 'api-docs-'));
  const run = spawnSync(join(TOOLS, 'node_modules', '.bin', 'typedoc'), ['--options', 'typedoc.json', '--treatWarningsAsErrors', '--out', out, '--logLevel', 'Warn'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  expect({ status: run.status, output: (run.stdout + run.stderr).trim() }).toEqual({ status: 0, output: '' });
  expect(tree(out)).toEqual(tree(join(ROOT, 'docs', 'api')));
}, 300_000);
