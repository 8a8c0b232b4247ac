import { fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageShape } from '@bufbuild/protobuf';
import type * as grpc from '@grpc/grpc-js';
import { AuthError } from '../errors.js';

/**
 * The codec between protobuf-es and grpc-js: a grpc-js service definition for every method of a
 * generated service (unary and streaming alike), typed from its descriptor. Nothing else in the
 * service serializes messages.
 */

/** A response message already encoded, sent as these bytes (see `answer-cache.ts`). */
export class EncodedMessage {
  constructor(readonly bytes: Buffer) {}
}

/** What the deserializer hands grpc-js for bytes that are not the method's message. */
class Unparsable {}

function toBuffer(bytes: Uint8Array): Buffer {
  // grpc-js needs a Buffer; this one shares the bytes instead of copying them.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes a message of `schema`; `EncodedMessage`s pass as they are. */
export function encode(schema: DescMessage, message: unknown): Buffer {
  return message instanceof EncodedMessage ? message.bytes : toBuffer(toBinary(schema, message as MessageShape<DescMessage>));
}

/** The gRPC path of a method: "/package.Service/Method". */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function methodDefinition(method: DescMethod): grpc.MethodDefinition<object, object> {
  return {
    path: methodPath(method),
    requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
    responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
    requestSerialize: (message) => encode(method.input, message),
    // grpc-js answers a deserializer that throws with INTERNAL; bad bytes are the caller's fault,
    // so they travel as a marker that `decoded` turns into INVALID_ARGUMENT.
    requestDeserialize: (bytes) => {
      try {
        return fromBinary(method.input, bytes, { readUnknownFields: false });
      } catch {
        return new Unparsable();
      }
    },
    responseSerialize: (message) => encode(method.output, message),
    responseDeserialize: (bytes) => fromBinary(method.output, bytes),
    originalName: method.name,
  };
}

/** A grpc-js service definition for every method of a generated service, keyed by local name. */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  return Object.fromEntries(service.methods.map((m) => [m.localName, methodDefinition(m)]));
}

/** The request grpc-js handed over, or `invalid_argument` when its bytes did not parse. */
export function decoded<T>(request: unknown): T {
  if (request instanceof Unparsable) throw new AuthError('invalid_argument', 'request is not a valid protobuf message');
  return request as T;
}
