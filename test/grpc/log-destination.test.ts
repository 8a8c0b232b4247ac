import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { linesPerTurn } from '../../src/logging';
import { ROOT } from '../helpers/process';

// Standard output is written once an event-loop turn (src/logging.ts `linesPerTurn`): these check
// that no line is lost, reordered or held past its turn, in this process and at a process's end.

function recordingSink(): { writes: string[]; write(data: string): void } {
  const writes: string[] = [];
  return { writes, write: (data) => void writes.push(data) };
}

const line = (i: number) => `{"n":${i}}\n`;

describe('standard output, one write a turn', () => {
  test('the lines of a turn are written together when the turn ends, in order; the next turn writes its own', async () => {
    const sink = recordingSink();
    const out = linesPerTurn(sink);
    for (let i = 0; i < 3; i++) out.write(line(i));
    expect(sink.writes).toEqual([]);
    await nextTurn();
    expect(sink.writes).toEqual([line(0) + line(1) + line(2)]);
    out.write(line(3));
    await nextTurn();
    expect(sink.writes).toEqual([line(0) + line(1) + line(2), line(3)]);
    // Nothing pending: the end of a quiet turn writes nothing.
    await nextTurn();
    expect(sink.writes).toHaveLength(2);
  });

  test('flushSync writes what is pending at once, and the end of the turn then writes nothing more', async () => {
    const sink = recordingSink();
    const out = linesPerTurn(sink);
    out.write(line(0));
    out.flushSync();
    expect(sink.writes).toEqual([line(0)]);
    await nextTurn();
    expect(sink.writes).toEqual([line(0)]);
  });

  test('a turn that logs more than 64 KB writes as it goes: the pending text stays bounded', () => {
    const sink = recordingSink();
    const out = linesPerTurn(sink);
    const big = `{"pad":"${'x'.repeat(1000)}"}\n`;
    for (let i = 0; i < 1000; i++) out.write(big);
    // About 1 MB logged in one turn, written in pieces of about 64 KB, none of them held.
    expect(sink.writes.length).toBeGreaterThanOrEqual(15);
    for (const w of sink.writes) expect(w.length).toBeLessThan(64 * 1024 + big.length);
    out.flushSync();
    expect(sink.writes.join('')).toBe(big.repeat(1000));
  });

  // The service's own logger, in a process of its own (the built code, as in production).
  const LOGGING = join(ROOT, 'dist', 'src', 'logging.js');
  test.each([
    { ending: 'process.exit(3) in the same turn', code: 'process.exit(3)', status: 3 },
    { ending: 'an uncaught exception in the same turn', code: "throw new Error('boom')", status: 1 },
    { ending: 'the event loop running out', code: '', status: 0 },
    { ending: 'process.exit(0) in a later turn', code: 'setTimeout(() => process.exit(0), 5)', status: 0 },
  ])('every line reaches standard output, in order, at $ending', ({ code, status }) => {
    const script = `
      const { createLogger } = require(${JSON.stringify(LOGGING)});
      // Twenty loggers of one process (and a child) share one buffer: their lines stay in order.
      const loggers = Array.from({ length: 20 }, () => createLogger('info'));
      const child = loggers[0].child({ reqId: 'r1' });
      for (let i = 0; i < 500; i++) (i % 2 ? child : loggers[i % 20]).info({ n: i }, 'line');
      ${code}`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(run.status).toBe(status);
    const lines = run.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { n: number; reqId?: string });
    expect(lines.map((l) => l.n)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(lines.filter((l) => l.reqId === 'r1')).toHaveLength(250);
    // One exit handler for the process, however many loggers it made.
    expect(run.stderr).not.toContain('MaxListenersExceededWarning');
  });
});
