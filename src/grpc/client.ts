import type { DescMessage, DescService, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from './adapter.js';

/** Per-call options of a typed client. */
export interface CallOptions {
  readonly metadata?: grpc.Metadata;
  /** Absolute deadline, or milliseconds from now. */
  readonly deadline?: Date | number;
  /** Per-call credentials, e.g. `session.callCredentials()`. */
  readonly credentials?: grpc.CallCredentials;
}

type ClientMethod<M> = M extends { methodKind: 'unary'; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
  : never;

/** A promise-based client for every unary RPC of a generated service, typed from its descriptor. */
export type UnaryClient<S extends DescService> = (S extends { method: infer Methods } ? { [K in keyof Methods]: ClientMethod<Methods[K]> } : never) & {
  readonly grpcClient: grpc.Client;
  close(): void;
};

/**
 * Creates a typed client. A rejected call rejects with the grpc-js `ServiceError` (its `code` is
 * the gRPC status code); deadlines given in milliseconds count from the call.
 */
export function createUnaryClient<S extends DescService>(
  service: S,
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options?: grpc.ClientOptions,
): UnaryClient<S> {
  const definitions = serviceDefinition(service);
  const Ctor = grpc.makeGenericClientConstructor(definitions, service.typeName);
  const client = new Ctor(address, credentials, options);
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind !== 'unary') continue;
    const path = `/${service.typeName}/${method.name}`;
    const definition = definitions[method.localName]!;
    methods[method.localName] = (request: MessageInitShape<DescMessage>, callOptions: CallOptions = {}) =>
      new Promise((resolve, reject) => {
        const deadline = typeof callOptions.deadline === 'number' ? new Date(Date.now() + callOptions.deadline) : callOptions.deadline;
        client.makeUnaryRequest(
          path,
          definition.requestSerialize,
          definition.responseDeserialize,
          create(method.input, request),
          callOptions.metadata ?? new grpc.Metadata(),
          { ...(deadline ? { deadline } : {}), ...(callOptions.credentials ? { credentials: callOptions.credentials } : {}) },
          (err, response) => (err ? reject(err) : resolve(response)),
        );
      });
  }
  return Object.assign(methods, { grpcClient: client, close: () => client.close() }) as unknown as UnaryClient<S>;
}
