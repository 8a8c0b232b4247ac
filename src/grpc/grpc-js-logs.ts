import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';

/**
 * grpc-js writes its own diagnostics to the console, and some quote a caller's metadata verbatim:
 * "Failed to add metadata entry authorization: Bearer <token>" for a header with a tab in it.
 * This routes them into our JSON log, scrubbed, at `warn`. grpc-js has one logger per process,
 * so the service's entry point installs it once.
 */
export function routeGrpcJsLogs(log: Logger): void {
  const forward = (...args: unknown[]) => log.warn({ event: 'grpc_js', detail: scrubGrpcJsMessage(format(...args)) }, 'grpc-js');
  grpc.setLogger({ error: forward, info: forward, debug: forward });
}

/** Removes metadata values, quoted strings and anything shaped like a token. */
export function scrubGrpcJsMessage(text: string): string {
  return text
    .replace(/(metadata entry [A-Za-z0-9_.-]+):[^\n]*?(?=\. Metadata|$)/g, '$1: [redacted]')
    .replace(/"[^"]*"/g, '"[redacted]"')
    .replace(/[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, '[redacted]')
    .replace(/rt[12]_[A-Za-z0-9_-]*/g, '[redacted]')
    .slice(0, 500);
}
