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
