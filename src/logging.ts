import * as timers from 'node:timers';
import { isMainThread } from 'node:worker_threads';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

/**
 * Field names that could carry a secret. Call logging is an allow-list already; this redaction is
 * the second line of defence should a careless field ever reach a log call.
 */
export const REDACTED_PATHS = [
  'password',
  'passwordHash',
  'token',
  'accessToken',
  'refreshToken',
  'authorization',
  'secret',
  'metadata',
  'request',
  '*.password',
  '*.passwordHash',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.authorization',
  '*.secret',
  '*.metadata',
];

/**
 * Makes `log` report the name of every audit event it writes (a line with an `event` field) to
 * `onEvent`, whatever the log level: metrics count events even when their lines are filtered out.
 * Children made from it afterwards count too (pino children inherit their parent's methods), so
 * one wrapped logger serves every call; test/grpc/audit-metrics.test.ts proves it through calls.
 */
export function countEvents(log: Logger, onEvent: (event: string, fields: Record<string, unknown>) => void): Logger {
  for (const level of ['info', 'warn', 'error'] as const) {
    const write = log[level] as (...args: unknown[]) => void;
    // `this`, not `log`: a child calling the inherited method must write with its own bindings.
    (log as unknown as Record<string, unknown>)[level] = function (this: Logger, ...args: unknown[]) {
      const fields = args[0] as { event?: unknown } | undefined;
      if (typeof fields === 'object' && fields !== null && typeof fields.event === 'string') onEvent(fields.event, fields as Record<string, unknown>);
      write.apply(this, args);
    };
  }
  return log;
}

const CENSOR = '[redacted]';
const REDACTED_FIELDS = new Set(REDACTED_PATHS.filter((p) => !p.startsWith('*.')));
const REDACTED_NESTED = REDACTED_PATHS.filter((p) => p.startsWith('*.')).map((p) => p.slice(2));

/** A copy of `value` (same prototype and properties, an Error stays an Error) with `names` censored. */
function censoredCopy(value: object, names: readonly string[]): object {
  const fields = Object.getOwnPropertyDescriptors(value) as Record<string, PropertyDescriptor>;
  // Each keeps its own enumerability: a hidden field stays out of the line, as it was.
  for (const name of names) fields[name] = { value: CENSOR, enumerable: fields[name]?.enumerable ?? true, writable: true, configurable: true };
  return Object.create(Object.getPrototypeOf(value) as object | null, fields) as object;
}

/**
 * REDACTED_PATHS applied to a line's fields (or a child's bindings), as pino's `redact` option
 * applies them: a field of one of the names (unless undefined: the line leaves it out), or a
 * field of a field, present even as undefined or null, becomes "[redacted]"; the caller's object
 * is never changed. pino's `redact` (the @pinojs/redact library) cost about 11 µs of a Refresh's
 * call (a child logger and two lines) of about 17 for all its logging; this is a pass over the keys.
 * Children of children are censored too (`child` below). Not covered, and not used by the service:
 * `setBindings`, and a child given its own `formatters.log`.
 * test/grpc/log-redaction.test.ts checks it against pino's own redact on generated objects.
 */
export function censor(fields: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    // An undefined field is left out of the line, so there is nothing to censor.
    if (value === undefined) continue;
    if (REDACTED_FIELDS.has(key)) {
      (out ??= { ...fields })[key] = CENSOR;
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    // Every line passes here: nothing is allocated unless a field is found.
    let present: string[] | undefined;
    for (const name of REDACTED_NESTED) if (Object.prototype.hasOwnProperty.call(value, name)) (present ??= []).push(name);
    if (present !== undefined) (out ??= { ...fields })[key] = censoredCopy(value, present);
  }
  return out ?? fields;
}

let lastMs = -1;
let lastTime = '';
let lastSecond = NaN;
let secondPrefix = '';
/**
 * pino's `isoTime`, made once a millisecond (under load most lines share their millisecond), from
 * a prefix made once a second: `toISOString` for every millisecond with a line cost a busy server
 * about as much as the rest of a line's time field (bench/results/profile-service-token.txt).
 */
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    const ms = ((now % 1000) + 1000) % 1000;
    const second = now - ms;
    if (second !== lastSecond) {
      lastSecond = second;
      const iso = new Date(second).toISOString();
      // Everything before the milliseconds and the Z: "2026-12-07T11:58:50."
      secondPrefix = `,"time":"${iso.slice(0, iso.length - 4)}`;
    }
    lastTime = `${secondPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  }
  return lastTime;
}

/** What `linesPerTurn` writes to: a synchronous writer (pino.destination with `sync: true`). */
export interface LineSink {
  write(data: string): unknown;
}

/**
 * At most this many bytes go in one write: a write to a pipe up to PIPE_BUF (4096 on Linux) is
 * atomic, so another process writing the same pipe (a process manager's, a sidecar's) never
 * splits a line. A single longer line is written alone, as it always was.
 */
const WRITE_BYTES_MAX = 4096;
// Taken when the module loads: a test's fake timers, installed later, cannot hold lines back.
const nextTurn = timers.setImmediate;
/** pino's level of `warn`: lines of this level and above are written at once. */
const WARN = 40;

/** Why standard output refused a write, reported once each on standard error (its lines may be lost). */
const reportedWriteErrors = new Set<string>();
function reportWriteError(err: unknown): void {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? String(err);
  if (reportedWriteErrors.has(code)) return;
  reportedWriteErrors.add(code);
  try {
    process.stderr.write(`grpc-auth: log lines could not be written to standard output (${code}); lines may be lost until it takes them again\n`);
  } catch {
    // Standard error is gone too: nothing is left to tell.
  }
}

/** A destination made by `linesPerTurn`. */
export interface LinesPerTurn extends DestinationStream {
  /** Writes what is pending now. */
  flushSync(): void;
  /** pino's `logger.flush(cb)`: writes what is pending, then calls back. */
  flush(cb?: (err?: Error) => void): void;
  /** From now on every line is written as it comes (the process is exiting). */
  writeThrough(): void;
}

/**
 * A destination that writes the info lines logged in one event-loop turn together, synchronously,
 * when the turn ends (setImmediate), in the order they were logged, at most WRITE_BYTES_MAX bytes a
 * write. Under load one turn runs the ends of many calls, and a write system call a line was
 * about 5 µs of the main thread (a Refresh logs two: the call's and its audit event's;
 * bench/results/profile-refresh.txt). A warning, an error or a fatal line is written at once, with
 * whatever is pending before it, so the lines an operator needs after a crash, a hang or a kill
 * are out before the process can die. What is pending is written on process exit (process.exit,
 * the end of a shutdown, an uncaught exception), and every line after that as it comes. An info
 * line waits at most for the end of its turn: a process killed then (SIGKILL, a signal it does not
 * handle, out of memory, a native crash) or a turn that never ends (a hang) loses the info lines of
 * that turn. A write that fails (a full disk under a redirected stdout) may lose its lines and is
 * reported once on standard error; it never throws into the service.
 */
export function linesPerTurn(sink: LineSink): LinesPerTurn {
  let pending = '';
  let pendingBytes = 0;
  let scheduled = false;
  let through = false;
  const flushSync = () => {
    if (pending === '') return;
    const lines = pending;
    pending = '';
    pendingBytes = 0;
    try {
      sink.write(lines);
    } catch (err) {
      reportWriteError(err);
    }
  };
  const endOfTurn = () => {
    scheduled = false;
    flushSync();
  };
  const destination: LinesPerTurn & { lastLevel?: number; [key: symbol]: unknown } = {
    // pino sets `lastLevel` on a destination that asks for its metadata.
    [Symbol.for('pino.metadata')]: true,
    write(line: string) {
      const bytes = Buffer.byteLength(line);
      if (pendingBytes + bytes > WRITE_BYTES_MAX) flushSync();
      pending += line;
      pendingBytes += bytes;
      if (through || (destination.lastLevel ?? 0) >= WARN) flushSync();
      else if (!scheduled) {
        scheduled = true;
        nextTurn(endOfTurn);
      }
    },
    flushSync,
    flush(cb) {
      flushSync();
      cb?.();
    },
    writeThrough() {
      through = true;
      flushSync();
    },
  };
  return destination;
}

let stdoutLines: LinesPerTurn | undefined;
/**
 * Standard output for every logger of the process: one buffer keeps their lines in order. In a
 * worker thread (no exit event flushes it when the worker is ended) every line is written as it comes.
 */
function standardOutput(): DestinationStream {
  if (!stdoutLines) {
    const lines = linesPerTurn(pino.destination({ dest: 1, sync: true }));
    if (isMainThread) process.on('exit', lines.writeThrough);
    else lines.writeThrough();
    stdoutLines = lines;
  }
  return stdoutLines;
}

/**
 * The root logger: JSON lines, ISO times, secrets redacted (see `censor`). Written to stdout
 * synchronously (`linesPerTurn`: info lines once a turn, warnings and worse at once): an
 * asynchronous write still in flight at exit can land after a later line, or not at all, and the
 * last lines of a shutdown are the ones an operator needs.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'grpc-auth' },
    timestamp: isoTime,
    formatters: { level: (label: string) => ({ level: label }), bindings: censor, log: censor },
  };
  const log = pino(options, destination ?? standardOutput());
  // pino applies `formatters.bindings` to the root's bindings only; a child's pass through here.
  // Children inherit this method (pino children are made with Object.create), so it holds for all.
  const child = log.child;
  (log as { child: unknown }).child = function (this: Logger, bindings: Record<string, unknown>, childOptions?: Parameters<Logger['child']>[1]) {
    // Not an object (pino refuses it with its own message): passed on as it is.
    return child.call(this, typeof bindings === 'object' && bindings !== null ? censor(bindings) : bindings, childOptions);
  };
  return log;
}
