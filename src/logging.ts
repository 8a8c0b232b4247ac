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

/**
 * The root logger: JSON lines, ISO times, secrets redacted. Written synchronously to stdout: an
 * asynchronous write still in flight at exit can land after a later line, or not at all, and the
 * last lines of a shutdown are the ones an operator needs.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'grpc-auth' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}
