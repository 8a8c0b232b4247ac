import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type TextMapGetter, type TextMapSetter, type Tracer } from '@opentelemetry/api';
import type { Metadata } from '@grpc/grpc-js';

/**
 * OpenTelemetry tracing, off unless configured. Only `@opentelemetry/api` is imported here; the
 * SDK and the OTLP exporter load only when the OTEL_* variables ask for them (telemetry-sdk.ts).
 * When tracing is off the service builds no span, wraps no store and no hasher: the cost is one
 * `undefined` check per call.
 *
 * What a trace holds: a SERVER span per RPC (`rpc.system`, `rpc.service`, `rpc.method`,
 * `rpc.grpc.status_code`, `client.address`, `enduser.id` once the caller is known), its parent
 * taken from the call's `traceparent` metadata (W3C Trace Context), and INTERNAL child spans for
 * each store operation and password hash. Never a token, password, hash or secret.
 */
export interface Tracing {
  readonly tracer: Tracer;
}

/** Tracing with `tracer`, or undefined (off). */
export function tracingWith(tracer: Tracer | undefined): Tracing | undefined {
  return tracer ? { tracer } : undefined;
}

const metadataGetter: TextMapGetter<Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const values = carrier.get(key).filter((v): v is string => typeof v === 'string');
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
  },
};

const metadataSetter: TextMapSetter<Metadata> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** The trace context a call's metadata carries (traceparent, tracestate), or the root context. */
export function extractFromMetadata(metadata: Metadata): Context {
  return propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
}

/** Whether a propagator is registered (an OpenTelemetry SDK is running in this process). */
export function propagating(): boolean {
  return propagation.fields().length > 0;
}

/** The trace context an incoming call carries, when an SDK is running here; else undefined (no work). */
export function incomingTraceContext(metadata: Metadata): Context | undefined {
  return propagating() ? extractFromMetadata(metadata) : undefined;
}

/**
 * Outgoing metadata with the active trace context written in (traceparent, tracestate), when an
 * SDK is running here and a span is active; else `metadata` itself. The caller's object is never
 * changed: a given one is copied first.
 */
export function withTraceContext(metadata: Metadata | undefined, create: () => Metadata): Metadata {
  if (!propagating() || !trace.getActiveSpan()) return metadata ?? create();
  const out = metadata ? metadata.clone() : create();
  propagation.inject(context.active(), out, metadataSetter);
  return out;
}

/** gRPC status codes that mark a server span as an error (OpenTelemetry semantic conventions for RPC). */
const SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]); // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS

/** A SERVER span for the call `path` ("/pkg.Service/Method"), child of what its metadata carries. */
export function startCallSpan(tracing: Tracing, path: string, metadata: Metadata, clientAddress: string): { span: Span; context: Context } {
  const parent = extractFromMetadata(metadata);
  const slash = path.lastIndexOf('/');
  const service = path.slice(1, slash);
  const method = path.slice(slash + 1);
  const span = tracing.tracer.startSpan(
    `${service}/${method}`,
    { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method, 'client.address': clientAddress } },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/** Ends a call's span with its gRPC status. */
export function endCallSpan(span: Span, code: number, codeName: string): void {
  span.setAttribute('rpc.grpc.status_code', code);
  if (SERVER_ERRORS.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, message: codeName });
  span.end();
}

/**
 * Events after which the id they carry is the caller: it proved who it is in this call. Elsewhere
 * an event's `userId` or `serviceAccountId` may name someone else (an admin's target, the account
 * a failed login or client authentication tried), and the caller is its `actorId`.
 */
const CALLER_PROVEN = new Set(['user_registered', 'login_succeeded', 'session_created', 'session_refreshed', 'refresh_retried', 'logout', 'service_token_issued']);

/**
 * Notes an audit event on the active span: a span event with its name and the ids it carries (ids
 * only: audit events never carry secrets), and `enduser.id` when the event says who the caller is.
 */
export function noteEvent(event: string, fields: Record<string, unknown>): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  const subject = fields.userId ?? fields.serviceAccountId;
  const caller = typeof fields.actorId === 'string' ? fields.actorId : CALLER_PROVEN.has(event) ? subject : undefined;
  if (typeof caller === 'string') span.setAttribute('enduser.id', caller);
  const attributes: Record<string, string> = {};
  for (const key of ['userId', 'serviceAccountId', 'sessionId', 'actorId'] as const) if (typeof fields[key] === 'string') attributes[key] = fields[key];
  span.addEvent(event, attributes);
}

/**
 * `target` with every listed async method run in an INTERNAL child span named `<prefix>.<method>`
 * while a call's span is active (background work, such as health checks, makes no trace).
 */
export function traced<T extends object>(tracing: Tracing, target: T, prefix: string, methods: ReadonlyArray<keyof T & string>, attributes: Record<string, string> = {}): T {
  const wrapped: Record<string, unknown> = Object.create(target) as Record<string, unknown>;
  for (const name of methods) {
    const op = (target as Record<string, unknown>)[name];
    if (typeof op !== 'function') continue;
    wrapped[name] = (...args: unknown[]): unknown => {
      if (!trace.getActiveSpan()) return (op as (...a: unknown[]) => unknown).apply(target, args);
      return tracing.tracer.startActiveSpan(`${prefix}.${name}`, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
        try {
          return await (op as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (err) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'error' });
          throw err;
        } finally {
          span.end();
        }
      });
    };
  }
  return wrapped as T;
}

/** Runs `fn` with `ctx` active (so child spans and outgoing calls see it). */
export function withContext<R>(ctx: Context | undefined, fn: () => R): R {
  return ctx ? context.with(ctx, fn) : fn();
}

/**
 * Whether the standard OTEL_* variables ask for traces: an OTLP endpoint, or
 * OTEL_TRACES_EXPORTER=otlp; never with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
 */
export function otelConfigured(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporter === 'none') return false;
  return exporter === 'otlp' || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}
