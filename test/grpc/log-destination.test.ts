import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import pino from 'pino';
import { linesPerTurn } from '../../src/logging';
import { ROOT } from '../helpers/process';

// Standard output is written once an event-loop turn for info lines, at once for warnings and
// worse (src/logging.ts `linesPerTurn`): these check that no line is lost, reordered or held past
// its turn, in this process and at a process's end, and that a failing stdout never throws.

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

  test('a warning, an error or a fatal line is written at once, with the info lines before it', async () => {
    const sink = recordingSink();
    const log = pino({ base: undefined, timestamp: false }, linesPerTurn(sink));
    log.info('one');
    log.info('two');
    expect(sink.writes).toEqual([]);
    log.warn('three');
    expect(sink.writes.map((w) => w.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg))).toEqual([['one', 'two', 'three']]);
    log.info('four');
    expect(sink.writes).toHaveLength(1);
    log.error('five');
    expect(sink.writes).toHaveLength(2);
    log.fatal('six');
    expect(sink.writes).toHaveLength(3);
    await nextTurn();
    expect(sink.writes.join('').match(/"msg":"\w+"/g)).toEqual(['one', 'two', 'three', 'four', 'five', 'six'].map((m) => `"msg":"${m}"`));
  });

  test("flushSync and pino's flush(cb) write what is pending at once; the end of the turn then writes nothing more", async () => {
    const sink = recordingSink();
    const out = linesPerTurn(sink);
    out.write(line(0));
    out.flushSync();
    expect(sink.writes).toEqual([line(0)]);
    const log = pino({ base: undefined, timestamp: false }, out);
    log.info('pending');
    const flushed = new Promise<number>((resolve) => log.flush(() => resolve(sink.writes.length)));
    expect(await flushed).toBe(2);
    await nextTurn();
    expect(sink.writes).toHaveLength(2);
  });

  test('no write is longer than 4096 bytes (atomic on a pipe), so a turn that logs much writes as it goes; a longer line goes alone', () => {
    const sink = recordingSink();
    const out = linesPerTurn(sink);
    // Multi-byte text: the bound counts bytes, not characters.
    const wide = `{"pad":"${'é'.repeat(300)}"}\n`;
    for (let i = 0; i < 100; i++) out.write(wide);
    const long = `{"pad":"${'x'.repeat(10_000)}"}\n`;
    out.write(long);
    out.write(line(1));
    out.flushSync();
    expect(sink.writes.join('')).toBe(wide.repeat(100) + long + line(1));
    for (const w of sink.writes) if (w !== long) expect(Buffer.byteLength(w)).toBeLessThanOrEqual(4096);
    expect(sink.writes).toContain(long);
    // About 62 KB: at least 16 writes, each of whole lines.
    expect(sink.writes.length).toBeGreaterThanOrEqual(16);
    for (const w of sink.writes) expect(w.endsWith('\n')).toBe(true);
  });

  test('a write that fails is reported once on standard error, never thrown; later lines are written', async () => {
    const writes: string[] = [];
    let failing = true;
    const out = linesPerTurn({
      write(data: string) {
        if (failing) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        writes.push(data);
      },
    });
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      out.write(line(0));
      await nextTurn();
      out.write(line(1));
      out.flushSync();
      failing = false;
      out.write(line(2));
      await nextTurn();
      expect(writes).toEqual([line(2)]);
      // Two failed writes, one report (once per cause in a process; each test file has its own modules).
      expect(stderr.mock.calls).toHaveLength(1);
      expect(String(stderr.mock.calls[0]![0])).toMatch(/could not be written to standard output \(ENOSPC\)/);
    } finally {
      stderr.mockRestore();
    }
  });

  // The service's own logger, in a process of its own (the built code, as in production).
  const LOGGING = join(ROOT, 'dist', 'src', 'logging.js');
  const logger = `const { createLogger } = require(${JSON.stringify(LOGGING)});`;

  test.each([
    { ending: 'process.exit(3) in the same turn', code: 'process.exit(3)', status: 3 },
    { ending: 'an uncaught exception in the same turn', code: "throw new Error('boom')", status: 1 },
    { ending: 'process.exit(0) in a later turn', code: 'setTimeout(() => process.exit(0), 5)', status: 0 },
    { ending: 'process.exit(0) after an exit handler that logs', code: "process.on('exit', () => loggers[0].info({ n: 500 }, 'last words')); process.exit(0)", status: 0, lines: 501 },
  ])('every line reaches standard output, in order, at $ending', ({ code, status, lines: count = 500 }) => {
    const script = `${logger}
      // Twenty loggers of one process (and a child) share one buffer: their lines stay in order.
      const loggers = Array.from({ length: 20 }, () => createLogger('info'));
      const child = loggers[0].child({ reqId: 'r1' });
      for (let i = 0; i < 500; i++) (i % 2 ? child : loggers[i % 20]).info({ n: i }, 'line');
      ${code}`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(run.status).toBe(status);
    const lines = run.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { n: number; reqId?: string });
    expect(lines.map((l) => l.n)).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(lines.filter((l) => l.reqId === 'r1')).toHaveLength(250);
    // One exit handler for the process, however many loggers it made.
    expect(run.stderr).not.toContain('MaxListenersExceededWarning');
  });

  test('a running process writes an info line by the end of its turn, and a warning before a hang', async () => {
    // Logs an info line, lets its turn end, then a warning and hangs: both are on stdout while it runs.
    const script = `${logger}
      const log = createLogger('info');
      log.info('served');
      setTimeout(() => { log.warn('about to hang'); for (;;) {} }, 200);`;
    const child = spawn(process.execPath, ['-e', script]);
    try {
      const seen = await new Promise<string[]>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const msgs = out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg);
          if (msgs.length >= 2) resolve(msgs);
        });
        child.on('exit', (c) => reject(new Error(`exited ${c}`)));
      });
      expect(seen).toEqual(['served', 'about to hang']);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('standard output on a full disk (/dev/full): the process goes on and says so once on standard error', () => {
    const script = `${logger}
      const log = createLogger('info');
      log.info('x');
      setTimeout(() => { log.info('y'); log.warn('z'); setTimeout(() => process.stderr.write('still running'), 20); }, 10);`;
    const run = spawnSync('sh', ['-c', `exec "${process.execPath}" -e "$SCRIPT" > /dev/full`], { encoding: 'utf8', env: { ...process.env, SCRIPT: script } });
    expect(run.status).toBe(0);
    expect(run.stderr.match(/could not be written to standard output \(ENOSPC\)/g)).toHaveLength(1);
    expect(run.stderr).toContain('still running');
  });
});
