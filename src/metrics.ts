import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from './metric-series.js';
import { VERSION } from './version.js';

/** Security events counted under their own metric names, as operators alert on them. */
const EVENT_COUNTERS: Record<string, { name: string; help: string }> = {
  login_failed: { name: 'auth_logins_failed_total', help: 'Logins refused for a wrong password or an unknown user.' },
  login_throttled: { name: 'auth_logins_throttled_total', help: 'Logins refused by failed-login back-off.' },
  refresh_token_reused: { name: 'auth_refresh_reuse_detected_total', help: 'Rotated refresh tokens presented again (sessions revoked).' },
  api_key_exchanged: { name: 'auth_api_key_exchanges_total', help: 'API keys exchanged for access tokens (ExchangeApiKey).' },
  api_key_exchange_failed: { name: 'auth_api_key_exchanges_failed_total', help: 'API keys refused by ExchangeApiKey (unknown, altered, expired or revoked keys, owners disabled or with a new password).' },
  passkey_login_succeeded: { name: 'auth_passkey_logins_total', help: 'Sign-ins with a passkey (FinishPasskeyLogin that started a session).' },
  passkey_login_refused: { name: 'auth_passkey_logins_refused_total', help: 'Passkey sign-ins refused (a used or expired ceremony, an unknown passkey, a bad origin, RP ID, signature or counter).' },
};

/** Where the gauges read their values, set once the service is composed (each optional). */
export interface MetricSources {
  /** Sessions held: the memory store's count, or PostgreSQL's count of active sessions (cached). */
  liveSessions?: () => number | Promise<number>;
  /** PostgreSQL: connections of this instance's pool, and calls waiting for one. */
  pool?: () => { readonly total: number; readonly idle: number; readonly waiting: number };
  /** PostgreSQL: the schema version the database is at (cached). */
  schemaVersion?: () => Promise<number | undefined>;
  /** PostgreSQL: the host written to, and whether through a pooler in transaction mode. */
  writer?: () => { readonly host: string; readonly pooler: boolean };
  /** Password hashes running and waiting for a slot. */
  hashLoad?: () => { readonly running: number; readonly queued: number };
  /** The key new tokens are signed with. */
  signingKey?: () => { readonly kid: string; readonly alg: string };
  /** Whether `grpc-auth maintenance` has writes refused. */
  maintenance?: () => boolean;
}

/**
 * Prometheus metrics (prom-client, one registry per service instance): calls by method and
 * status, latency per method and per store operation, audit and security events, the store's
 * health, errors by cause, connection pool and fail-overs, the sweeper, the hashing queue, the
 * signing key, and the Node process defaults. Served over HTTP only when AUTH_METRICS_ADDRESS is
 * set. Every name is listed with its meaning in docs/observability.md (a test keeps them equal).
 */
export class Metrics {
  readonly registry = new Registry();
  // The metrics every call touches are SeriesCounter and SeriesHistogram (metric-series.ts): the
  // same output, without prom-client's hashing of a label object on every observation.
  private readonly calls: SeriesCounter;
  private readonly duration: SeriesHistogram;
  private readonly events: SeriesCounter;
  private readonly securityEvents = new Map<string, SeriesCounter>();
  private readonly storeDuration: SeriesHistogram;
  private readonly storeErrors: Counter<'operation' | 'cause'>;
  private readonly serving: Gauge;
  private readonly sweepRows: Counter<'table'>;
  private readonly sweepLast: Gauge;
  private readonly pgErrors: Counter<'cause'>;
  private readonly pgRetries: Counter<'sqlstate'>;
  private readonly pgAcquire: Histogram;
  private readonly pgFailovers: Counter;
  private sources: MetricSources = {};

  constructor(build: { readonly store: string } = { store: 'memory' }) {
    const registers = [this.registry];
    const sources = () => this.sources;
    collectDefaultMetrics({ register: this.registry });
    // The usual build-info gauge: always 1, its labels say what runs (dashboards join on it).
    new Gauge({ name: 'auth_build_info', help: 'Always 1: the release, Node.js version and store this instance runs.', labelNames: ['version', 'node', 'store'], registers }).set(
      { version: VERSION, node: process.version, store: build.store },
      1,
    );
    const registry = this.registry;
    this.calls = new SeriesCounter({ name: 'auth_rpc_calls_total', help: 'RPCs handled, by method and gRPC status code.', labelNames: ['method', 'code'], registry });
    this.duration = new SeriesHistogram({
      name: 'auth_rpc_duration_seconds',
      help: 'RPC latency by method, from first byte to status.',
      labelNames: ['method'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registry,
    });
    this.events = new SeriesCounter({ name: 'auth_events_total', help: 'Audit events, by name (see docs/observability.md).', labelNames: ['event'], registry });
    for (const [event, { name, help }] of Object.entries(EVENT_COUNTERS)) {
      this.securityEvents.set(event, new SeriesCounter({ name, help, registry }));
    }
    this.storeDuration = new SeriesHistogram({
      name: 'auth_store_operation_duration_seconds',
      help: 'Store operation latency by operation (the Store interface method), answered or not.',
      labelNames: ['operation'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registry,
    });
    this.storeErrors = new Counter({
      name: 'auth_store_errors_total',
      help: 'Store operations that failed (cause "error") or got no answer within AUTH_STORE_TIMEOUT (cause "timeout"), by operation.',
      labelNames: ['operation', 'cause'],
      registers,
    });
    this.serving = new Gauge({ name: 'auth_serving', help: '1 while health says SERVING (the store can serve), 0 while NOT_SERVING.', registers });
    new Gauge({
      name: 'auth_maintenance',
      help: '1 while grpc-auth maintenance has this instance refuse writes (reads go on), 0 otherwise.',
      registers,
      collect() {
        this.set(sources().maintenance?.() ? 1 : 0);
      },
    });
    this.sweepRows = new Counter({ name: 'auth_store_sweep_rows_total', help: 'Rows (or entries) the sweeper deleted, by table.', labelNames: ['table'], registers });
    this.sweepLast = new Gauge({ name: 'auth_store_sweep_last_success_timestamp_seconds', help: 'When the sweeper last finished a run (Unix time).', registers });
    new Gauge({
      name: 'auth_sessions_live',
      help: "Active sessions: this instance's memory store's, or every instance's on PostgreSQL (counted at most every 30 s); absent with the Redis store.",
      registers,
      async collect() {
        const count = sources().liveSessions;
        if (count) this.set(await count());
      },
    });
    new Gauge({
      name: 'auth_password_hashes',
      help: 'Password hashes (argon2id) running, and waiting for a slot (AUTH_HASH_CONCURRENCY).',
      labelNames: ['state'],
      registers,
      collect() {
        const load = sources().hashLoad?.();
        if (load) {
          this.set({ state: 'running' }, load.running);
          this.set({ state: 'queued' }, load.queued);
        }
      },
    });
    new Gauge({
      name: 'auth_signing_key_info',
      help: 'Always 1: the key id and algorithm new tokens are signed with (changes on a key rotation).',
      labelNames: ['kid', 'alg'],
      registers,
      collect() {
        const key = sources().signingKey?.();
        this.reset();
        if (key) this.set({ kid: key.kid, alg: key.alg }, 1);
      },
    });
    // PostgreSQL only (absent on the other stores).
    this.pgErrors = new Counter({ name: 'auth_postgres_errors_total', help: 'Failed PostgreSQL operations by cause: timeout, connection, late (past its deadline), sqlstate_<class>.', labelNames: ['cause'], registers });
    this.pgRetries = new Counter({ name: 'auth_postgres_transaction_retries_total', help: 'Transactions run again after a serialization failure (40001) or a deadlock (40P01).', labelNames: ['sqlstate'], registers });
    this.pgAcquire = new Histogram({
      name: 'auth_postgres_pool_acquire_duration_seconds',
      help: 'Wait for a connection from the pool.',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5],
      registers,
    });
    this.pgFailovers = new Counter({ name: 'auth_postgres_failovers_total', help: 'Times the store moved to another host of AUTH_DATABASE_URL (a promoted standby).', registers });
    new Gauge({
      name: 'auth_postgres_pool_connections',
      help: "Connections of this instance's pool: idle, busy; and calls waiting for one (state=\"waiting\").",
      labelNames: ['state'],
      registers,
      collect() {
        const pool = sources().pool?.();
        if (pool) {
          this.set({ state: 'idle' }, pool.idle);
          this.set({ state: 'busy' }, pool.total - pool.idle);
          this.set({ state: 'waiting' }, pool.waiting);
        }
      },
    });
    new Gauge({
      name: 'auth_postgres_schema_version',
      help: 'The migration the database is at (migrations/postgres).',
      registers,
      async collect() {
        const version = await sources().schemaVersion?.();
        if (version !== undefined) this.set(version);
      },
    });
    new Gauge({
      name: 'auth_postgres_writer_info',
      help: 'Always 1: the host this instance writes to, and whether through a pooler in transaction mode.',
      labelNames: ['host', 'pooler'],
      registers,
      collect() {
        const writer = sources().writer?.();
        this.reset();
        if (writer) this.set({ host: writer.host, pooler: String(writer.pooler) }, 1);
      },
    });
  }

  /** Where the gauges read from, once the service is composed. */
  watch(sources: MetricSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  observeCall(method: string, code: string, seconds: number): void {
    this.calls.inc(method, code);
    this.duration.observe(seconds, method);
  }

  event(name: string): void {
    this.events.inc(name);
    this.securityEvents.get(name)?.inc();
  }

  storeOperation(operation: string, seconds: number, failure: 'error' | 'timeout' | undefined): void {
    this.storeDuration.observe(seconds, operation);
    if (failure) this.storeErrors.inc({ operation, cause: failure });
  }

  setServing(serving: boolean): void {
    this.serving.set(serving ? 1 : 0);
  }

  swept(rows: Readonly<Record<string, number>>, at: number): void {
    for (const [table, n] of Object.entries(rows)) this.sweepRows.inc({ table }, n);
    this.sweepLast.set(at / 1000);
  }

  /** What the PostgreSQL store reports (see PostgresObserver). */
  readonly postgres = {
    failed: (cause: string) => this.pgErrors.inc({ cause }),
    retried: (sqlState: string) => this.pgRetries.inc({ sqlstate: sqlState }),
    acquired: (waitMs: number) => this.pgAcquire.observe(waitMs / 1000),
    switched: () => this.pgFailovers.inc(),
  };

  /** Serves GET /metrics on host:port; resolves with the bound port. */
  async serve(address: string): Promise<{ port: number; close(): Promise<void> }> {
    const server: Server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/metrics') {
        this.registry.metrics().then(
          (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
          () => res.writeHead(500).end(),
        );
      } else {
        res.writeHead(404).end();
      }
    });
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(address.slice(colon + 1)), host, () => resolve());
    });
    return {
      port: (server.address() as { port: number }).port,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }
}
