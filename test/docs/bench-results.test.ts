import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// `npm run bench` writes bench/results/latest.md and docs/performance.md's tables together;
// this keeps a hand edit of either from going unnoticed.
const root = join(__dirname, '..', '..');
const rows = (text: string) => text.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| Figure') && !line.startsWith('| Work'));
const page = readFileSync(join(root, 'docs', 'performance.md'), 'utf8');
const latest = readFileSync(join(root, 'bench/results/latest.md'), 'utf8');
const [figures, peers = ''] = latest.split('\n## Beside the peers');
const [sideBySide = '', perCore = ''] = peers.split('\n### Per core');
const marked = (name: string) => {
  const block = new RegExp(`<!-- bench:${name} -->\\n([\\s\\S]*?)<!-- /bench:${name} -->`).exec(page);
  expect(block).not.toBeNull();
  return rows(block![1]!);
};

// A run without h2load or PostgreSQL has fewer peers (or none): the page must say the same.
test.each([
  ["the figures' table", 'table', figures!, 9],
  ['the peers side by side', 'peers', sideBySide, 0],
  ['the peers per core', 'per-core', perCore, 0],
])("docs/performance.md's %s is the latest benchmark run's", (_name, marker, section, least) => {
  const expected = rows(section);
  expect(expected.length).toBeGreaterThanOrEqual(least);
  expect(marked(marker)).toEqual(expected);
});
