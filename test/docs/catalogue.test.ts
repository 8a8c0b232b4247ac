import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/process';
import { TOOLS } from '../helpers/requires';

/** The pages a reader can reach: the landing README, docs/ (not the generated reference), and the root's other documents. */
const DOCS = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
const PAGES = ['README.md', 'SECURITY.md', 'CHANGELOG.md', ...DOCS, 'examples/backend-starter/README.md', 'examples/web-signin/README.md'];
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string) => heading.toLowerCase().replace(/`/g, '').replace(/[^\p{L}\p{N}\s_-]/gu, '').trim().replace(/\s/g, '-');
const anchorsOf = (file: string) => new Set([...read(file).matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));

/** Every test file's text, to find which tests name a block. */
function testSources(dir = join(ROOT, 'test')): string {
  return readdirSync(dir)
    .map((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? (name === 'fixtures' ? '' : testSources(path)) : name.endsWith('.ts') ? readFileSync(path, 'utf8') : '';
    })
    .join('\n');
}
/** The tests beside the examples they run (examples/<name>/*.test.ts) count too. */
const exampleTests = () => ['web-signin'].map((name) => testSources(join(ROOT, 'examples', name))).join('\n');

describe('the docs a newcomer reads', () => {
  test('the README is a landing page: at most 150 lines, the two commands first', () => {
    const readme = read('README.md');
    expect(readme.split('\n').length).toBeLessThanOrEqual(150);
    expect(readme.split('\n').slice(0, 8).join('\n')).toMatch(/```sh\nnpm ci && npm start .*\nnpm ci && npm test .*\n```/);
  });

  test('every page of docs/ is reachable from the README', () => {
    const linked = new Set([...read('README.md').matchAll(/\]\((docs\/[^)#]+)/g)].map((m) => m[1]!));
    expect(DOCS.filter((d) => !linked.has(d))).toEqual([]);
  });

  test.each(PAGES)('%s: every relative link leads to a file, and every #anchor to a heading there', (page) => {
    const broken: string[] = [];
    for (const [, target] of read(page).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [path, anchor] = target!.split('#') as [string, string | undefined];
      const file = path === '' ? page : relative(ROOT, resolve(ROOT, dirname(page), path));
      let exists = true;
      try {
        statSync(join(ROOT, file));
      } catch {
        exists = false;
      }
      if (!exists) broken.push(`${target}: no such file`);
      else if (anchor !== undefined && file.endsWith('.md') && !anchorsOf(file).has(anchor)) broken.push(`${target}: no such heading`);
    }
    expect(broken).toEqual([]);
  });

  test.each(DOCS.filter((d) => read(d).split('\n').length > 80))('%s is long: it opens with a table of contents', (page) => {
    const head = read(page).split('\n').slice(0, 20).join('\n');
    const ownLinks = [...head.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]!);
    expect(ownLinks.length).toBeGreaterThanOrEqual(2);
  });

  test.each(PAGES)("%s: every sh block is run by a test, or says why it cannot be", (page) => {
    const tests = testSources() + exampleTests();
    const unrun: string[] = [];
    for (const m of read(page).matchAll(/(?:<!-- ([^>]*?) -->\n)?```sh\n/g)) {
      const marker = m[1] ?? '';
      const block = /^block: ([\w-]+)$/.exec(marker)?.[1];
      if (block !== undefined && (tests.includes(`'${block}'`) || tests.includes(`block: ${block} `))) continue;
      if (marker === 'consumer:sh' && tests.includes('consumer:')) continue;
      if (/^not-run: .{10,}$/.test(marker)) continue;
      unrun.push(marker === '' ? `a block at offset ${m.index} has no marker` : `${marker}: no test names it`);
    }
    expect(unrun).toEqual([]);
  });

  test("docs/development.md's table of what the tests need is the tests' own list, and CI installs each package", () => {
    const table = /<!-- tools:table -->\n([\s\S]*?)<!-- \/tools:table -->/.exec(read('docs/development.md'))![1]!;
    const packages = [...table.matchAll(/^\| [^|]+ \| `([^`]+)` \|/gm)].flatMap((m) => m[1]!.split(' '));
    const needed = Object.values(TOOLS).flatMap((t) => t.install.replace('apt-get install -y ', '').split(' '));
    expect([...new Set(packages)].sort()).toEqual([...new Set(needed)].sort());
    const ci = read('.ci/run');
    for (const p of packages) expect({ p, installed: ci.includes(p) }).toEqual({ p, installed: true });
  });
});
