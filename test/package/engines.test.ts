import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';

const ROOT = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: { node?: string }; dev?: boolean; optional?: boolean }> };

/** The declared Node range, every dependency's, and the README agree (npm ci warns on a mismatch: EBADENGINE). */
describe('Node versions', () => {
  const minimum = semver.minVersion(pkg.engines.node)!.version;

  test('every runtime dependency runs on the oldest Node the package declares', () => {
    const refusing = Object.entries(lock.packages)
      .filter(([name, p]) => name !== '' && !p.dev && p.engines?.node && !semver.satisfies(minimum, p.engines.node))
      .map(([name, p]) => `${name} ${p.engines!.node}`);
    expect(refusing).toEqual([]);
  });

  test('every dependency, development ones too, runs on this Node (CI runs Node 20): npm ci prints no EBADENGINE', () => {
    const refusing = Object.entries(lock.packages)
      .filter(([name, p]) => name !== '' && p.engines?.node && !semver.satisfies(process.version, p.engines.node))
      .map(([name, p]) => `${name} ${p.engines!.node}`);
    expect(refusing).toEqual([]);
  });

  test('the README names the same minimum', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(`Needs Node.js ${minimum.replace(/\.0$/, '')} or later`);
  });
});
