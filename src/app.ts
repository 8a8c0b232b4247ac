import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { KeySet } from './core/keys.js';
import type { AuthServer } from './grpc/server.js';
import type { ReloadableTls } from './grpc/tls.js';
import type { Metrics } from './metrics.js';
import type { StoreBackend } from './store/backends.js';
import type { MaintenanceSwitch } from './store/maintenance-guard.js';
import type { Store } from './store/store.js';

/*
 * The service as its parts see it: what composeService (compose.ts) builds and startService
 * (run.ts) runs. Apart from both, so neither imports the other for a type.
 */

/** The built service: every part wired, nothing started (no socket, no timer). */

export interface AuthServiceApp {
  readonly config: Config;
  readonly clock: Clock;
  readonly server: AuthServer;
  /** The store as the flows see it: every operation bounded, every failure `unavailable`. */
  readonly store: Store;
  readonly backend: StoreBackend;
  /** This instance's view of `grpc-auth maintenance`: while on, writes are refused (the health check keeps it). */
  readonly maintenance: MaintenanceSwitch;
  readonly keys: KeySet;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Undefined for plaintext. */
  readonly tls: ReloadableTls | undefined;
  /** 'tls', 'mtls' or 'plaintext'. */
  readonly transport: 'tls' | 'mtls' | 'plaintext';
  /** Writes the users file's users into the store (start-up runs it until the store answers). */
  seedUsers(): Promise<void>;
  /**
   * Re-reads AUTH_SIGNING_KEY_FILE (SIGHUP) and puts its keys in place at once: the keys now in
   * use, or undefined when there are no key files to read (HS256, an ephemeral or a given key).
   * Throws KeyError and keeps the old keys when a file is unreadable or holds no valid key.
   */
  reloadKeys(): KeySet | undefined;
  /** Stops the service's password-hashing threads (RunningService.close does, last); a later hash starts them again. */
  closeHasher(): Promise<void>;
  /** Starts serving on the configured (or given) address: see `startService`. */
  start(address?: string): Promise<RunningService>;
}


/** A started service: listening, health following the store, upkeep on its timers. */
export interface RunningService {
  /** The bound gRPC port. */
  readonly port: number;
  /** The bound metrics port, when AUTH_METRICS_ADDRESS is set. */
  readonly metricsPort: number | undefined;
  /** Re-reads the TLS files (SIGHUP); open connections are kept. Throws TlsError and keeps the old material on failure. */
  reloadTls(): void;
  /** Graceful shutdown (see AuthServer.shutdown), then timers stop, the store is closed and the hashing threads stop. Idempotent. */
  close(graceMs?: number): Promise<void>;
}
