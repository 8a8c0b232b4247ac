import { repeat, type Timer } from './clock.js';
import type { AuthServiceApp, RunningService } from './app.js';
import { AuthError } from './errors.js';
import { refusal, StoreSetupError } from './store/store.js';

/** How often health asks the store whether it can serve. */
export const STORE_CHECK_INTERVAL_MS = 1000;

/**
 * Runs a built service: connects the store (an unreachable store does not stop start-up: the
 * service starts NOT_SERVING and recovers), starts the store's upkeep and the health monitor on
 * the service's clock, serves metrics when configured, and listens.
 */
export async function startService(app: AuthServiceApp, address = app.config.address): Promise<RunningService> {
  const { clock, config, log, server, store, backend } = app;
  const timers: Timer[] = [];
  // An unreachable store does not stop start-up; one that is misconfigured does, and so does
  // one that refuses the service (a wrong password...) unless AUTH_STORE_WAIT says to wait.
  await store.connect().catch((err: unknown) => {
    if (!(err instanceof AuthError && err.code === 'unavailable')) throw err;
    const refused = refusal(err);
    if (refused && !config.storeWait) throw new StoreSetupError(`${refused} (set AUTH_STORE_WAIT=true to start anyway and keep trying)`);
  });
  // The users file seeds the store before the service reports SERVING; a store that is away
  // now is seeded when it answers. A conflict in the file stops start-up here.
  let seeded = false;
  const seed = async () => {
    if (seeded) return;
    try {
      await app.seedUsers();
      seeded = true;
    } catch (err) {
      if (!(err instanceof AuthError && err.code === 'unavailable')) throw err;
    }
  };
  await seed();
  if (backend.maintenance) {
    const { intervalMs, run } = backend.maintenance;
    timers.push(repeat(clock, intervalMs, () => run(clock.now())));
  }

  // Health follows the store: NOT_SERVING while it cannot be reached, SERVING again once it can.
  // A refusal (a wrong password...) is logged again and again, at 1, 2, 4, ... checks, then each
  // minute: it lasts until someone acts, so it must not scroll away after the first line.
  let storeUp = true;
  let storeProblem: unknown;
  let refusedChecks = 0;
  const checkStore = async () => {
    const up = await store.ping().then(
      () => seed().then(() => seeded),
      (err: unknown) => {
        storeProblem = err;
        return false;
      },
    ).catch((err: unknown) => {
      log.error({ event: 'users_file_conflict', cause: { message: (err as Error).message } }, 'the users file cannot be seeded');
      return false;
    });
    if (up !== storeUp) {
      if (up) log.info({ event: 'store_recovered' }, 'store reachable again');
      else log.warn({ event: 'store_unavailable', cause: causeOf(storeProblem) }, 'store cannot serve: health is NOT_SERVING');
    }
    const refused = up ? undefined : refusal(storeProblem);
    refusedChecks = refused ? refusedChecks + 1 : 0;
    if (refused && (refusedChecks >= 64 ? refusedChecks % 60 === 0 : (refusedChecks & (refusedChecks - 1)) === 0)) {
      log.error({ event: 'store_refused', checks: refusedChecks, cause: causeOf(storeProblem) }, `store refuses the service: ${refused}`);
    }
    storeUp = up;
    server.setReady(up);
    app.metrics.setServing(up);
    if (up) {
      const on = await store.readMaintenance().catch(() => app.maintenance.on);
      if (on !== app.maintenance.on) {
        app.maintenance.on = on;
        if (on) log.warn({ event: 'maintenance_started' }, 'maintenance: this instance refuses writes (reads go on) until grpc-auth maintenance off');
        else log.info({ event: 'maintenance_ended' }, 'maintenance over: writes are taken again');
      }
    }
  };

  const metricsServer = config.metricsAddress === undefined ? undefined : await app.metrics.serve(config.metricsAddress);
  if (metricsServer) log.info({ event: 'metrics_listening', port: metricsServer.port }, 'metrics endpoint listening');
  let port: number;
  try {
    port = await server.listen(address, app.tls?.credentials());
  } catch (err) {
    for (const t of timers) t.cancel();
    await metricsServer?.close();
    throw err;
  }
  await checkStore();
  timers.push(repeat(clock, STORE_CHECK_INTERVAL_MS, () => void checkStore()));

  let closing: Promise<void> | undefined;
  return {
    port,
    metricsPort: metricsServer?.port,
    reloadTls() {
      if (!app.tls) return;
      app.tls.reload();
      log.info({ event: 'tls_reloaded' }, 'TLS certificates re-read');
    },
    close(graceMs = config.shutdownGraceMs) {
      closing ??= (async () => {
        for (const t of timers) t.cancel();
        await metricsServer?.close();
        await server.shutdown(graceMs);
        try {
          await store.close();
        } finally {
          await app.closeHasher();
        }
      })();
      return closing;
    },
  };
}

/** What went wrong with the store, for the log: the underlying error's type and message (never a URL: ioredis errors name host and port only). */
function causeOf(err: unknown): { type: string; message: string } | undefined {
  const inner = err instanceof AuthError && err.cause !== undefined ? err.cause : err;
  return inner instanceof Error ? { type: inner.name, message: inner.message.slice(0, 300) } : undefined;
}
