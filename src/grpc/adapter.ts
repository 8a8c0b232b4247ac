import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { AuthError } from '../errors.js';
import { callContext, type CallContext } from './call-context.js';
import { CallTimeouts } from './call-timeouts.js';
import { logFailure, toStatus } from './status.js';

/**
 * The one bridge between protobuf-es and grpc-js: service definitions typed from the generated
 * descriptors (a missing RPC is a compile error), and unary handlers that are plain async
 * functions whose callback runs exactly once.
 */

/** A unary handler: a request in, a response (or an AuthError) out. */
export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (request: MessageShape<I>, ctx: CallContext) => Promise<MessageInitShape<O>>;

type HandlerOf<M> = M extends { methodKind: 'unary'; input: infer I extends DescMessage; output: infer O extends DescMessage } ? UnaryHandler<I, O> : never;

/** Every RPC of the service, by its generated local name (`login`, `whoAmI` …). Unary only. */
export type UnaryServiceImpl<S extends DescService> = S extends { method: infer Methods } ? { [K in keyof Methods]: HandlerOf<Methods[K]> } : never;

/** Marks a request whose bytes did not parse, so the handler can answer INVALID_ARGUMENT. */
const UNPARSABLE = Symbol('unparsable request');

function toBuffer(bytes: Uint8Array): Buffer {
  // grpc-js needs a Buffer; this one shares the bytes instead of copying them.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// A handler may answer with the same frozen message many times (Validate and WhoAmI, for a
// token seen before): its bytes are made once. grpc-js copies them into each frame.
const serialized = new WeakMap<object, Buffer>();

function serialize(schema: DescMessage, message: MessageShape<DescMessage>): Buffer {
  if (!Object.isFrozen(message)) return toBuffer(toBinary(schema, message));
  let bytes = serialized.get(message);
  if (bytes === undefined) {
    bytes = toBuffer(toBinary(schema, message));
    serialized.set(message, bytes);
  }
  return bytes;
}

/** Freezes a message and everything in it, so `serialize` may answer with the same bytes again. */
export function frozenMessage<T extends object>(message: T): T {
  for (const value of Object.values(message)) if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) frozenMessage(value);
  return Object.freeze(message);
}

/**
 * Answers that depend only on `key` (an object the core hands back again for a repeat, such as
 * the claims of a token seen before): built fresh the first time; from the second time on, one
 * frozen message that is built and serialized once. A key seen once costs one WeakMap entry.
 */
export function repeatedAnswers<K extends object, M extends object>(build: (key: K) => M): (key: K) => M {
  const answers = new WeakMap<K, M | null>();
  return (key) => {
    const answer = answers.get(key);
    if (answer) return answer;
    if (answer === undefined) {
      answers.set(key, null);
      return build(key);
    }
    const frozen = frozenMessage(build(key));
    answers.set(key, frozen);
    return frozen;
  };
}

function methodDefinition(service: DescService, method: DescMethod): grpc.MethodDefinition<object, object> {
  return {
    path: `/${service.typeName}/${method.name}`,
    requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
    responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
    requestSerialize: (message) => toBuffer(toBinary(method.input, message as MessageShape<DescMessage>)),
    requestDeserialize: (bytes) => {
      try {
        return fromBinary(method.input, bytes, { readUnknownFields: false });
      } catch {
        return { [UNPARSABLE]: true };
      }
    },
    responseSerialize: (message) => serialize(method.output, message as MessageShape<DescMessage>),
    responseDeserialize: (bytes) => fromBinary(method.output, bytes),
    originalName: method.name,
  };
}

/** A grpc-js service definition for every method of a generated service, keyed by local name. */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  return Object.fromEntries(service.methods.map((m) => [m.localName, methodDefinition(service, m)]));
}

/** True when grpc-js handed us the marker of a request that did not parse. */
export function isUnparsable(request: unknown): boolean {
  return typeof request === 'object' && request !== null && UNPARSABLE in request;
}

export interface AdapterOptions {
  /** Upper bound (ms) on any call's work, whatever the client's deadline. */
  readonly callTimeout: number;
}

/**
 * Turns a typed implementation into grpc-js handlers. Each call: parse check, a bound on the
 * work (`callTimeout`; grpc-js itself ends a call at the client's deadline), errors mapped
 * through the one status table.
 */
export function unaryHandlers<S extends DescService>(service: S, impl: UnaryServiceImpl<S>, options: AdapterOptions): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  const timeouts = new CallTimeouts(options.callTimeout);
  for (const method of service.methods) {
    if (method.methodKind !== 'unary') throw new Error(`${service.typeName}.${method.name}: only unary methods are supported`);
    const handler = (impl as Record<string, UnaryHandler<DescMessage, DescMessage>>)[method.localName];
    if (typeof handler !== 'function') throw new Error(`${service.typeName}.${method.name} has no implementation`);
    handlers[method.localName] = adaptUnary(method, handler, timeouts);
  }
  return handlers;
}

function adaptUnary(method: DescMethod, handler: UnaryHandler<DescMessage, DescMessage>, timeouts: CallTimeouts): grpc.handleUnaryCall<object, object> {
  return (call, callback) => {
    const ctx = callContext(call.metadata);
    let settled = false;
    // A cancelled call (client gone, deadline passed, server force-closed) has no one to answer;
    // `call.cancelled` says so without a listener per call.
    const finish = (err: grpc.ServiceError | Partial<grpc.StatusObject> | null, response?: object) => {
      if (settled) return;
      settled = true;
      timeouts.done(bound);
      if (call.cancelled) return;
      if (err) callback(err as grpc.ServiceError);
      else callback(null, response);
    };
    const fail = (err: unknown) => {
      if (settled) return;
      const status = toStatus(err);
      if (!call.cancelled) logFailure(ctx.log, status.code, err);
      finish(status);
    };
    const bound = timeouts.add(() => fail(new AuthError('deadline_exceeded', 'the call took too long')));

    if (isUnparsable(call.request)) {
      fail(new AuthError('invalid_argument', 'request is not a valid protobuf message'));
      return;
    }
    // Any throw or rejection, synchronous or not, ends as a status: never an unhandled rejection.
    try {
      handler(call.request as MessageShape<DescMessage>, ctx).then((response) => {
        try {
          finish(null, create(method.output, response));
        } catch (err) {
          fail(err);
        }
      }, fail);
    } catch (err) {
      fail(err);
    }
  };
}
