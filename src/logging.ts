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

const eventSinks = new WeakMap<Logger, { sink: ((event: string) => void) | undefined }>();

/**
 * Calls `sink` with the name of every audit event (a line with an `event` field) that this root
 * logger or any of its children writes: how metrics count events without a second code path.
 */
export function onLogEvent(log: Logger, sink: (event: string) => void): void {
  const holder = eventSinks.get(log);
  if (holder) holder.sink = sink;
}

/**
 * The root logger: JSON lines, ISO times, secrets redacted. Written synchronously to stdout: an
 * asynchronous write still in flight at exit can land after a later line, or not at all, and the
 * last lines of a shutdown are the ones an operator needs.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const holder: { sink: ((event: string) => void) | undefined } = { sink: undefined };
  const options = {
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
        const fields = args[0] as { event?: unknown } | undefined;
        if (holder.sink && typeof fields === 'object' && fields !== null && typeof fields.event === 'string') holder.sink(fields.event);
        method.apply(this, args);
      },
    },
    level,
    base: { service: 'grpc-auth' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const log = pino(options as pino.LoggerOptions, destination ?? pino.destination({ dest: 1, sync: true }));
  eventSinks.set(log, holder);
  return log;
}
