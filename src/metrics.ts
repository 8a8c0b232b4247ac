import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { VERSION } from './version.js';

/** Security events counted under their own metric names, as operators alert on them. */
const EVENT_COUNTERS: Record<string, { name: string; help: string }> = {
  login_failed: { name: 'auth_logins_failed_total', help: 'Logins refused for a wrong password or an unknown user.' },
  login_throttled: { name: 'auth_logins_throttled_total', help: 'Logins refused by failed-login back-off.' },
  refresh_token_reused: { name: 'auth_refresh_reuse_detected_total', help: 'Rotated refresh tokens presented again (sessions revoked).' },
};

/**
 * Prometheus metrics (prom-client, one registry per service instance): calls by method and status,
 * latency per method, audit events by name, security events, live sessions, store errors, and the
 * Node process defaults. Served over HTTP only when AUTH_METRICS_ADDRESS is set.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly calls: Counter<'method' | 'code'>;
  private readonly duration: Histogram<'method'>;
  private readonly events: Counter<'event'>;
  private readonly securityEvents = new Map<string, Counter>();
  private readonly storeErrors: Counter;

  constructor(liveSessions: (() => number) | undefined, build: { readonly store: string } = { store: 'memory' }) {
    collectDefaultMetrics({ register: this.registry });
    // The usual build-info gauge: always 1, its labels say what runs (dashboards join on it).
    new Gauge({ name: 'auth_build_info', help: 'Always 1: the release, Node.js version and store this instance runs.', labelNames: ['version', 'node', 'store'], registers: [this.registry] }).set(
      { version: VERSION, node: process.version, store: build.store },
      1,
    );
    this.calls = new Counter({ name: 'auth_rpc_calls_total', help: 'RPCs handled, by method and gRPC status code.', labelNames: ['method', 'code'], registers: [this.registry] });
    this.duration = new Histogram({
      name: 'auth_rpc_duration_seconds',
      help: 'RPC latency by method, from first byte to status.',
      labelNames: ['method'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [this.registry],
    });
    this.events = new Counter({ name: 'auth_events_total', help: 'Audit events, by name (see docs/observability.md).', labelNames: ['event'], registers: [this.registry] });
    for (const [event, { name, help }] of Object.entries(EVENT_COUNTERS)) {
      this.securityEvents.set(event, new Counter({ name, help, registers: [this.registry] }));
    }
    this.storeErrors = new Counter({ name: 'auth_store_errors_total', help: 'Store operations that failed or timed out.', registers: [this.registry] });
    new Gauge({
      name: 'auth_sessions_live',
      help: 'Sessions held by this instance\'s memory store (absent with the Redis store).',
      registers: [this.registry],
      collect() {
        if (liveSessions) this.set(liveSessions());
      },
    });
  }

  observeCall(method: string, code: string, seconds: number): void {
    this.calls.inc({ method, code });
    this.duration.observe({ method }, seconds);
  }

  event(name: string): void {
    this.events.inc({ event: name });
    this.securityEvents.get(name)?.inc();
  }

  storeError(): void {
    this.storeErrors.inc();
  }

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
