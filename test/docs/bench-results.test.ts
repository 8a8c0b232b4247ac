import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// `npm run bench` writes bench/results/latest.md and docs/performance.md's table together;
// this keeps a hand edit of either from going unnoticed.
test("docs/performance.md's table is the latest benchmark run's", () => {
  const root = join(__dirname, '..', '..');
  const rows = (text: string) => text.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| Figure'));
  const readme = readFileSync(join(root, 'docs', 'performance.md'), 'utf8');
  const marked = /<!-- bench:table -->\n([\s\S]*?)<!-- \/bench:table -->/.exec(readme);
  expect(marked).not.toBeNull();
  const latest = rows(readFileSync(join(root, 'bench/results/latest.md'), 'utf8'));
  expect(latest.length).toBeGreaterThanOrEqual(9);
  expect(rows(marked![1]!)).toEqual(latest);
});
