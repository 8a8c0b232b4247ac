import { Writable } from 'node:stream';
import fc from 'fast-check';
import pino from 'pino';
import { censor, createLogger, REDACTED_PATHS } from '../../src/logging';

// The service's logger censors REDACTED_PATHS itself (src/logging.ts `censor`) instead of through
// pino's `redact` option, which cost a third of each line. The two must write the same lines:
// here they log the same generated fields and bindings, and the outputs are compared.

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, lines: () => chunks.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const names = ['password', 'passwordHash', 'token', 'accessToken', 'refreshToken', 'authorization', 'secret', 'metadata', 'request', 'userId', 'event', 'code', 'nested', 'list'];
const leaf = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined));
const level2 = fc.dictionary(fc.constantFrom(...names), fc.oneof(leaf, fc.array(leaf, { maxLength: 3 }), fc.dictionary(fc.constantFrom(...names), leaf, { maxKeys: 3, noNullPrototype: true })), { maxKeys: 5, noNullPrototype: true });
const fields = fc.dictionary(fc.constantFrom(...names), fc.oneof(leaf, level2, fc.array(level2, { maxLength: 2 })), { maxKeys: 6, noNullPrototype: true });

const drop = ({ time: _t, pid: _p, hostname: _h, service: _s, ...rest }: Record<string, unknown>) => rest;

test('censor writes what pino redact writes, for generated fields and bindings', () => {
  fc.assert(
    fc.property(fields, fields, (bindings, line) => {
      const ours = capture();
      const theirs = capture();
      createLogger('info', ours.stream).child(bindings).info(line, 'm');
      pino({ redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, formatters: { level: (label: string) => ({ level: label }) } }, theirs.stream).child(bindings).info(line, 'm');
      expect(ours.lines().map(drop)).toEqual(theirs.lines().map(drop));
    }),
    { numRuns: 500 },
  );
});

test.each([
  ['a secret field', { password: 'hunter2' }, { password: '[redacted]' }],
  ['one a field down, present as undefined', { call: { token: undefined } }, { call: { token: '[redacted]' } }],
  ['an undefined field: left out of the line anyway', { token: undefined }, { token: undefined }],
  ['one a field down', { call: { authorization: 'Bearer x', code: 'OK' } }, { call: { authorization: '[redacted]', code: 'OK' } }],
  ['request, whole', { request: { username: 'a' } }, { request: '[redacted]' }],
  ['two fields down: not a path', { a: { b: { token: 't' } } }, { a: { b: { token: 't' } } }],
  ['nothing to censor: the same object', { code: 'OK', ms: 1 }, { code: 'OK', ms: 1 }],
])('%s', (_name, input, expected) => {
  const before = JSON.stringify(input);
  expect(censor(input)).toEqual(expected);
  // The caller's object is never changed.
  expect(JSON.stringify(input)).toBe(before);
});

test('an Error carrying a secret stays an Error, its secret censored', () => {
  const ours = capture();
  const theirs = capture();
  const err = Object.assign(new Error('boom'), { token: 'abc', code: 'E1' });
  createLogger('info', ours.stream).error({ err }, 'failed');
  pino({ redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, formatters: { level: (label: string) => ({ level: label }) } }, theirs.stream).error({ err }, 'failed');
  const [line] = ours.lines().map(drop);
  expect(line).toEqual(theirs.lines().map(drop)[0]);
  expect((line!.err as Record<string, unknown>).token).toBe('[redacted]');
  expect((line!.err as Record<string, unknown>).type).toBe('Error');
  expect(err.token).toBe('abc');
});

test('a redacted object is not the caller\'s: the nested copy leaves it alone', () => {
  const inner = { secret: 's', keep: 1 };
  const out = censor({ inner });
  expect(out.inner).toEqual({ secret: '[redacted]', keep: 1 });
  expect(inner.secret).toBe('s');
});

test('a child of a child, and a hidden field, come out as pino redact writes them', () => {
  const ours = capture();
  const theirs = capture();
  const hidden = Object.defineProperty({ keep: 1 }, 'secret', { value: 's', enumerable: false });
  const line = { nested: hidden, call: { token: 't' } };
  createLogger('info', ours.stream).child({ reqId: 'r' }).child({ authorization: 'Bearer x', inner: { refreshToken: 'rt' } }).info(line, 'm');
  pino({ redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, formatters: { level: (label: string) => ({ level: label }) } }, theirs.stream).child({ reqId: 'r' }).child({ authorization: 'Bearer x', inner: { refreshToken: 'rt' } }).info(line, 'm');
  const [written] = ours.lines().map(drop);
  expect(written).toEqual(theirs.lines().map(drop)[0]);
  expect(written).toMatchObject({ authorization: '[redacted]', inner: { refreshToken: '[redacted]' }, nested: { keep: 1 }, call: { token: '[redacted]' } });
  expect(JSON.stringify(written)).not.toMatch(/Bearer x|"rt"|"s"|"t"/);
});

test.each([
  ['the last millisecond of a second', Date.UTC(2026, 11, 7, 11, 58, 50, 999)],
  ['the first of the next', Date.UTC(2026, 11, 7, 11, 58, 51, 0)],
  ['a millisecond under 10', Date.UTC(2026, 11, 7, 11, 58, 51, 7)],
  ['one under 100', Date.UTC(2026, 11, 7, 11, 58, 51, 42)],
  ['one of three digits', Date.UTC(2026, 11, 7, 11, 58, 51, 500)],
  ['the turn of a year', Date.UTC(2026, 11, 31, 23, 59, 59, 999) + 1],
  ['the epoch', 0],
  ['before it', -1],
])("a line's time at %s is that millisecond's ISO time", (_name, at) => {
  jest.useFakeTimers({ now: at, doNotFake: ['setImmediate', 'setTimeout', 'nextTick', 'queueMicrotask'] });
  try {
    const ours = capture();
    createLogger('info', ours.stream).info('m');
    expect(ours.lines()[0]!.time).toBe(new Date(at).toISOString());
  } finally {
    jest.useRealTimers();
  }
});

test('each line\'s time is an ISO time of its millisecond, as pino.stdTimeFunctions.isoTime writes it', () => {
  const ours = capture();
  const log = createLogger('info', ours.stream);
  const before = Date.now();
  for (let i = 0; i < 200; i++) log.info({ i }, 'm');
  const after = Date.now();
  for (const line of ours.lines()) {
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const ms = Date.parse(String(line.time));
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  }
});
