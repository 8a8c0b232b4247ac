import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/**
 * The OpenTelemetry SDK, loaded only when the OTEL_* variables turn tracing on (see
 * `otelConfigured`): a Node tracer provider registered globally (AsyncLocalStorage context, W3C
 * Trace Context and Baggage propagation), batching spans to the OTLP/HTTP exporter, which reads
 * its own standard variables (OTEL_EXPORTER_OTLP_ENDPOINT, _TRACES_ENDPOINT, _HEADERS, _TIMEOUT).
 */
export function startTelemetry(env: NodeJS.ProcessEnv, version = packageVersion()): { tracer: Tracer; shutdown(): Promise<void> } {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'grpc-auth', 'service.version': version }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  return { tracer: provider.getTracer('grpc-auth-service', version), shutdown: () => provider.shutdown() };
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
