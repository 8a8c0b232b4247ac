import * as grpc from '@grpc/grpc-js';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One exported span as a receiver sees it, whatever the protocol. */
export interface ReceivedSpan {
  readonly name: string;
  readonly traceId: string;
  readonly parentSpanId: string;
  readonly serviceName: string;
}

/** The length-delimited and varint fields of one protobuf message, by field number (no schema). */
function fields(buf: Buffer): Map<number, Array<Buffer | bigint>> {
  const out = new Map<number, Array<Buffer | bigint>>();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const [field, wire] = [key >>> 3, key & 7];
    let value: Buffer | bigint;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const n = Number(varint());
      value = buf.subarray(i, i + n);
      i += n;
    } else if (wire === 1) (value = buf.subarray(i, i + 8)), (i += 8);
    else if (wire === 5) (value = buf.subarray(i, i + 4)), (i += 4);
    else throw new Error(`wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}
const messages = (m: Map<number, Array<Buffer | bigint>>, n: number) => (m.get(n) ?? []).filter((v): v is Buffer => Buffer.isBuffer(v)).map(fields);
const bytes = (m: Map<number, Array<Buffer | bigint>>, n: number) => (m.get(n)?.[0] as Buffer | undefined) ?? Buffer.alloc(0);

/** An OTLP ExportTraceServiceRequest in protobuf (opentelemetry/proto/trace/v1/trace.proto). */
export function spansOfProtobuf(body: Buffer): ReceivedSpan[] {
  return messages(fields(body), 1).flatMap((resourceSpans) => {
    const attributes = messages(messages(resourceSpans, 1)[0] ?? new Map(), 1);
    const service = attributes.find((kv) => bytes(kv, 1).toString() === 'service.name');
    const serviceName = service ? bytes(messages(service, 2)[0]!, 1).toString() : '';
    return messages(resourceSpans, 2).flatMap((scope) =>
      messages(scope, 2).map((span) => ({ name: bytes(span, 5).toString(), traceId: bytes(span, 1).toString('hex'), parentSpanId: bytes(span, 4).toString('hex'), serviceName })),
    );
  });
}

type OtlpJson = { resourceSpans: Array<{ resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }; scopeSpans: Array<{ spans: Array<{ name: string; traceId: string; parentSpanId?: string }> }> }> };

/** The same request in OTLP/JSON (hex ids). */
export function spansOfJson(body: Buffer): ReceivedSpan[] {
  return (JSON.parse(body.toString()) as OtlpJson).resourceSpans.flatMap((r) => {
    const serviceName = r.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
    return r.scopeSpans.flatMap((s) => s.spans.map((span) => ({ name: span.name, traceId: span.traceId, parentSpanId: span.parentSpanId ?? '', serviceName })));
  });
}

/** A receiver for one OTLP protocol on 127.0.0.1, keeping every span and the content types seen. */
export interface OtlpReceiver {
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  readonly contentTypes: Set<string>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(protocol: 'http/protobuf' | 'http/json' | 'grpc'): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes = new Set<string>();
  if (protocol === 'grpc') {
    const server = new grpc.Server();
    const raw = (b: Buffer) => b;
    server.addService(
      { export: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
      {
        export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          contentTypes.add('application/grpc');
          spans.push(...spansOfProtobuf(call.request));
          callback(null, Buffer.alloc(0));
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    return { endpoint: `http://127.0.0.1:${port}`, spans, contentTypes, close: async () => void server.forceShutdown() };
  }
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const type = String(req.headers['content-type']);
      contentTypes.add(type);
      const body = Buffer.concat(chunks);
      // Decoded by the protocol this receiver was set up for, as a real collector would.
      spans.push(...(protocol === 'http/protobuf' ? spansOfProtobuf(body) : spansOfJson(body)));
      res.writeHead(200, { 'content-type': type }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    contentTypes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
