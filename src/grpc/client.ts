import type { DescMessage, DescService, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { methodPath, serviceDefinition } from './bridge.js';
import { AuthClientError } from './client-error.js';
import { withTraceContext } from '../tracing.js';

/** Per-call options of a typed client. */
export interface CallOptions {
  /** Request metadata, e.g. `authorization` (or use `credentials`). */
  readonly metadata?: grpc.Metadata;
  /** Absolute deadline, or milliseconds from now. */
  readonly deadline?: Date | number;
  /** Per-call credentials, e.g. `session.callCredentials()`. */
  readonly credentials?: grpc.CallCredentials;
  /** Cancels the call (a stream: stops it). */
  readonly signal?: AbortSignal;
}

type ClientMethod<M> = M extends { methodKind: infer K; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? K extends 'unary'
    ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
    : K extends 'server_streaming'
      ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
      : never
  : never;

/**
 * A promise-based client for every unary and server-streaming RPC of a generated service, typed
 * from its descriptor: unary methods return a promise, server-streaming ones an async iterable.
 */
export type Client<S extends DescService> = (S extends { method: infer Methods } ? { [K in keyof Methods as ClientMethod<Methods[K]> extends never ? never : K]: ClientMethod<Methods[K]> } : never) & {
  readonly grpcClient: grpc.Client;
  close(): void;
};

/**
 * Creates a typed client. A failed call rejects (or its stream throws) with AuthClientError (its
 * `code` is the gRPC status code, `metadata` the trailers), the one error type of every client of
 * the package; deadlines given in milliseconds count from the call. Client-streaming and bidi methods are not offered.
 */
export function createClient<S extends DescService>(
  service: S,
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options?: grpc.ClientOptions,
): Client<S> {
  const definitions = serviceDefinition(service);
  const Ctor = grpc.makeGenericClientConstructor(definitions, service.typeName);
  const client = new Ctor(address, credentials, options);
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    const definition = definitions[method.localName]!;
    const path = methodPath(method);
    const callOptionsOf = (o: CallOptions): grpc.CallOptions => {
      const deadline = typeof o.deadline === 'number' ? new Date(Date.now() + o.deadline) : o.deadline;
      return { ...(deadline ? { deadline } : {}), ...(o.credentials ? { credentials: o.credentials } : {}) };
    };
    if (method.methodKind === 'unary') {
      methods[method.localName] = (request: MessageInitShape<DescMessage>, o: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          const call = client.makeUnaryRequest(
            path,
            definition.requestSerialize,
            definition.responseDeserialize,
            create(method.input, request),
            withTraceContext(o.metadata, () => new grpc.Metadata()),
            callOptionsOf(o),
            (err, response) => (err ? reject(AuthClientError.from(err)) : resolve(response)),
          );
          o.signal?.addEventListener('abort', () => call.cancel(), { once: true });
        });
    } else if (method.methodKind === 'server_streaming') {
      methods[method.localName] = (request: MessageInitShape<DescMessage>, o: CallOptions = {}) => {
        const call = client.makeServerStreamRequest(path, definition.requestSerialize, definition.responseDeserialize, create(method.input, request), withTraceContext(o.metadata, () => new grpc.Metadata()), callOptionsOf(o));
        o.signal?.addEventListener('abort', () => call.cancel(), { once: true });
        return streamOf(call);
      };
    }
  }
  return Object.assign(methods, { grpcClient: client, close: () => client.close() }) as unknown as Client<S>;
}

/** The messages of a server stream; its failure status is thrown, a cancel by the caller ends it quietly. */
async function* streamOf(call: grpc.ClientReadableStream<unknown>): AsyncIterable<never> {
  try {
    for await (const message of call) yield message as never;
  } catch (err) {
    if ((err as { code?: number }).code !== grpc.status.CANCELLED) throw AuthClientError.from(err);
  } finally {
    call.cancel();
  }
}
