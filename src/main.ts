import type { AuthServiceApp, RunningService } from './app.js';
import { composeService } from './compose.js';
import { readConfig } from './config.js';
import { KeyError } from './core/keys.js';
import { routeGrpcJsLogs } from './grpc/grpc-js-logs.js';
import { TlsError } from './grpc/tls.js';
import { createLogger } from './logging.js';
import { StoreSetupError } from './store/store.js';
import { otelConfigured } from './tracing.js';
import type { Tracer } from '@opentelemetry/api';
import { UsersFileError } from './users-file.js';
import { VERSION } from './version.js';

/**
 * Runs the service (`npm start`, `grpc-auth serve`): configuration from the environment, one
 * start-up log line, graceful shutdown on SIGTERM/SIGINT. Exit codes: 0 after a clean shutdown,
 * 2 for bad configuration, 1 for anything else that stops start-up.
 */
export async function serve(): Promise<void> {
  const report = readConfig(process.env);
  const config = report.config;
  if (!config) {
    process.stderr.write(report.problems.map((p) => `configuration error: ${p}\n`).join(''));
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
  for (const { variable, suggestion } of report.unknown) {
    log.warn({ event: 'unknown_setting', variable, ...(suggestion ? { suggestion } : {}) }, `${variable} is not a setting of this service and is ignored`);
  }
  routeGrpcJsLogs(log);
  process.on('unhandledRejection', (reason) => {
    log.error({ err: { type: reason instanceof Error ? reason.name : typeof reason } }, 'unhandled rejection');
  });

  // Handlers go in before anything can be listening: a signal that arrives earlier would kill
  // the process with no drain at all.
  let app: AuthServiceApp | undefined;
  let running: RunningService | undefined;
  // Tracing only when the OTEL_* variables ask for it: the SDK is not even loaded otherwise.
  let telemetry: { tracer: Tracer; protocol: string; shutdown(): Promise<void> } | undefined;
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'stopping', signal, graceMs: config.shutdownGraceMs }, 'shutting down: draining calls');
    // Drain the calls, then flush the spans still queued for export (tracing on; at most 5 s, so
    // an unreachable collector cannot hold the exit), then exit.
    (running ? running.close() : Promise.resolve())
      .then(() => telemetry && Promise.race([telemetry.shutdown(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]))
      .then(
        () => {
          log.info({ event: 'stopped' }, 'shut down');
          process.exit(0);
        },
        () => process.exit(1),
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // SIGHUP re-reads the TLS certificates (without dropping connections) and the signing keys.
  process.on('SIGHUP', () => {
    const cause = (err: unknown) => ({ type: (err as Error).name, message: (err as Error).message });
    try {
      running?.reloadTls();
    } catch (err) {
      log.error({ event: 'tls_reload_failed', cause: cause(err) }, 'TLS reload failed; the old certificates stay in use');
    }
    if (!running || !app) return;
    try {
      const keys = app.reloadKeys();
      if (keys) log.info({ event: 'keys_reloaded', kids: keys.all.map((k) => k.kid), signingKid: keys.signing.kid }, 'signing keys re-read');
    } catch (err) {
      log.error({ event: 'keys_reload_failed', cause: cause(err) }, 'signing key reload failed; the old keys stay in use');
    }
  });

  try {
    if (otelConfigured(process.env)) {
      const { startTelemetry } = await import('./telemetry-sdk.js');
      telemetry = await startTelemetry(process.env);
      log.info({ event: 'tracing_started', protocol: telemetry.protocol }, `OpenTelemetry tracing on (OTLP ${telemetry.protocol})`);
    }
    app = composeService(config, { log, ...(telemetry ? { tracer: telemetry.tracer } : {}) });
    running = await app.start();
  } catch (err) {
    // One JSON line for the log pipeline, and one plain line on standard error for whoever started it.
    const { message, exitCode } = startupFailure(err, config.address);
    log.fatal({ event: 'startup_failed', exitCode }, message);
    process.stderr.write(`grpc-auth: ${message}\n`);
    process.exit(exitCode);
  }
  if (stopping) return;
  const host = config.address.slice(0, config.address.lastIndexOf(':'));
  log.info(
    {
      event: 'started',
      version: VERSION,
      address: `${host}:${running.port}`,
      store: config.store,
      transport: app.transport,
      algorithm: app.keys.alg,
      kid: app.keys.signing.kid,
      issuer: config.issuer,
      audience: config.audience,
      registration: config.registration,
      // Passkeys: the RP id and the origins a ceremony may come from, or off.
      passkeys: config.webauthnRpId === undefined ? 'off' : { rpId: config.webauthnRpId, origins: config.webauthnOrigins },
      production: config.production,
    },
    'auth service listening',
  );
}

/**
 * What stopped start-up, as one line that names the file, address or host involved, and its exit
 * code: 2 for a configuration or file the operator must fix (a restart will not help), 1 otherwise.
 */
export function startupFailure(err: unknown, address: string): { message: string; exitCode: 1 | 2 } {
  if (err instanceof KeyError || err instanceof UsersFileError || err instanceof TlsError || err instanceof StoreSetupError || (err instanceof Error && err.name === 'TelemetrySetupError')) {
    return { message: err.message, exitCode: 2 };
  }
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const text = typeof e?.message === 'string' ? e.message : String(err);
  // grpc-js reports a failed bind as a plain object, with the listen error's text.
  if (/EADDRINUSE/.test(text)) return { message: `cannot listen on ${address}: the address is in use (EADDRINUSE)`, exitCode: 1 };
  if (/EACCES/.test(text)) return { message: `cannot listen on ${address}: permission denied (EACCES; ports below 1024 need privileges)`, exitCode: 1 };
  if (/EADDRNOTAVAIL/.test(text)) return { message: `cannot listen on ${address}: no such address on this host (EADDRNOTAVAIL)`, exitCode: 2 };
  return { message: `could not start: ${text}`, exitCode: 1 };
}

if (require.main === module) void serve();
