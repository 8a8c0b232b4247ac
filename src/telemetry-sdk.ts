import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Tracer } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace-node';

/** The OTLP transports, as OTEL_EXPORTER_OTLP_PROTOCOL names them. */
export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';
const PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];

/** An OTEL_* setting the SDK cannot work with: start-up stops, naming it. */
export class TelemetrySetupError extends Error {
  override readonly name = 'TelemetrySetupError';
}

/**
 * The protocol the standard variables ask for: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
 * OTEL_EXPORTER_OTLP_PROTOCOL, else `http/protobuf`, the specification's default. (Sending JSON
 * to a receiver told to expect protobuf loses every span's ids, the caller's trace id included.)
 */
export function otlpProtocol(env: NodeJS.ProcessEnv): OtlpProtocol {
  const name = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const value = env[name]?.trim() || 'http/protobuf';
  if (!(PROTOCOLS as readonly string[]).includes(value)) throw new TelemetrySetupError(`${name} must be one of ${PROTOCOLS.join(', ')} (got "${value.slice(0, 40)}")`);
  return value as OtlpProtocol;
}

/** The exporter for `protocol`; only that one is loaded. Each reads its own standard variables. */
async function exporterFor(protocol: OtlpProtocol): Promise<SpanExporter> {
  switch (protocol) {
    case 'http/protobuf':
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
    case 'http/json':
      return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
    case 'grpc':
      return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
  }
}

/**
 * The OpenTelemetry SDK, loaded only when the OTEL_* variables turn tracing on (see
 * `otelConfigured`): a Node tracer provider registered globally (AsyncLocalStorage context, W3C
 * Trace Context and Baggage propagation), batching spans to the OTLP exporter of the protocol
 * asked for, which reads its own standard variables (OTEL_EXPORTER_OTLP_ENDPOINT,
 * _TRACES_ENDPOINT, _HEADERS, _TIMEOUT).
 */
export async function startTelemetry(env: NodeJS.ProcessEnv, version = packageVersion()): Promise<{ tracer: Tracer; protocol: OtlpProtocol; shutdown(): Promise<void> }> {
  const protocol = otlpProtocol(env);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'grpc-auth', 'service.version': version }),
    spanProcessors: [new BatchSpanProcessor(await exporterFor(protocol))],
  });
  provider.register();
  return { tracer: provider.getTracer('grpc-auth-service', version), protocol, shutdown: () => provider.shutdown() };
}

/** This package's version, from its package.json (src/ and dist/src/ sit at different depths). */
function packageVersion(): string {
  for (let dir = __dirname, i = 0; i < 4; i++, dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'grpc-auth-service' && pkg.version) return pkg.version;
    }
  }
  return 'unknown';
}
