import { create, type DescMessage, type DescMethod, type DescService, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { systemClock, type Clock } from '../clock.js';
import { AuthError } from '../errors.js';
import { decoded, EncodedMessage } from './bridge.js';
import { callContext, type CallContext, type CallState } from './call-context.js';
import { CallTimeouts } from './call-timeouts.js';
import { logFailure, toStatus } from './status.js';
import { withContext } from '../tracing.js';

/**
 * Typed handlers for every kind of RPC, as plain async functions (connect-es `ServiceImpl`):
 * unary and client-streaming return a response, server-streaming and bidi return an async
 * iterable of responses. Whatever a handler throws ends the call through the one status table.
 */
export type Response<O extends DescMessage> = MessageInitShape<O> | EncodedMessage;
export type UnaryImpl<I extends DescMessage, O extends DescMessage> = (request: MessageShape<I>, ctx: CallContext) => Promise<Response<O>>;
export type ServerStreamingImpl<I extends DescMessage, O extends DescMessage> = (request: MessageShape<I>, ctx: CallContext) => AsyncIterable<Response<O>>;
export type ClientStreamingImpl<I extends DescMessage, O extends DescMessage> = (requests: AsyncIterable<MessageShape<I>>, ctx: CallContext) => Promise<Response<O>>;
export type BidiStreamingImpl<I extends DescMessage, O extends DescMessage> = (requests: AsyncIterable<MessageShape<I>>, ctx: CallContext) => AsyncIterable<Response<O>>;

type ImplOf<M> = M extends { methodKind: infer K; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? K extends 'unary'
    ? UnaryImpl<I, O>
    : K extends 'server_streaming'
      ? ServerStreamingImpl<I, O>
      : K extends 'client_streaming'
        ? ClientStreamingImpl<I, O>
        : BidiStreamingImpl<I, O>
  : never;

/** Every RPC of the service, by its generated local name (`login`, `watch` …): a missing one does not compile. */
export type ServiceImpl<S extends DescService> = S extends { method: infer Methods } ? { [K in keyof Methods]: ImplOf<Methods[K]> } : never;

export interface HandlerOptions {
  /**
   * Upper bound on the work of a unary or client-streaming call, whatever the client's deadline
   * (grpc-js itself ends a call at the deadline). Streams that send responses have no bound: they
   * end when the client leaves or the server shuts down. Default 10 s.
   */
  readonly callTimeoutMs?: number;
  /** The clock the bound runs on. */
  readonly clock?: Clock;
}

/** grpc-js handlers for every method of `service`, from a typed implementation. */
export function serviceHandlers<S extends DescService>(service: S, impl: ServiceImpl<S>, options: HandlerOptions = {}): grpc.UntypedServiceImplementation {
  const timeouts = new CallTimeouts(options.callTimeoutMs ?? 10_000, options.clock ?? systemClock);
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const handler = (impl as Record<string, unknown>)[method.localName];
    if (typeof handler !== 'function') throw new Error(`${service.typeName}.${method.name} has no implementation`);
    handlers[method.localName] = adapt(method, handler as (...args: never[]) => unknown, timeouts);
  }
  return handlers;
}

function adapt(method: DescMethod, handler: (...args: never[]) => unknown, timeouts: CallTimeouts): grpc.UntypedHandleCall {
  switch (method.methodKind) {
    case 'unary':
      return ((call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) =>
        respondOnce(call, callback, method, timeouts, (ctx) => (handler as UnaryImpl<DescMessage, DescMessage>)(decoded(call.request), ctx))) as grpc.handleUnaryCall<object, object>;
    case 'client_streaming':
      return ((call: grpc.ServerReadableStream<object, object>, callback: grpc.sendUnaryData<object>) =>
        respondOnce(call, callback, method, timeouts, (ctx) => (handler as ClientStreamingImpl<DescMessage, DescMessage>)(requestsOf(call), ctx))) as grpc.handleClientStreamingCall<object, object>;
    case 'server_streaming':
      return ((call: grpc.ServerWritableStream<object, object>) =>
        void stream(call, method, (ctx) => (handler as ServerStreamingImpl<DescMessage, DescMessage>)(decoded(call.request), ctx))) as grpc.handleServerStreamingCall<object, object>;
    case 'bidi_streaming':
      return ((call: grpc.ServerDuplexStream<object, object>) =>
        void stream(call, method, (ctx) => (handler as BidiStreamingImpl<DescMessage, DescMessage>)(requestsOf(call), ctx))) as grpc.handleBidiStreamingCall<object, object>;
  }
}

function response(method: DescMethod, message: Response<DescMessage>): object {
  return message instanceof EncodedMessage ? message : create(method.output, message);
}

/** Unary and client-streaming: one answer, given exactly once, within the call bound. */
function respondOnce(
  call: grpc.ServerUnaryCall<object, object> | grpc.ServerReadableStream<object, object>,
  callback: grpc.sendUnaryData<object>,
  method: DescMethod,
  timeouts: CallTimeouts,
  run: (ctx: CallContext) => Promise<Response<DescMessage>>,
): void {
  const ctx = callContext(call.metadata);
  let settled = false;
  // A cancelled call (client gone, deadline passed, server force-closed) has no one to answer;
  // `call.cancelled` says so without a listener per call.
  const finish = (err: Partial<grpc.StatusObject> | null, answer?: object) => {
    if (settled) return;
    settled = true;
    timeouts.done(bound);
    if (call.cancelled) return;
    if (err) callback(err as grpc.ServiceError);
    else callback(null, answer);
  };
  const fail = (err: unknown) => {
    if (settled) return;
    const status = toStatus(err);
    if (!call.cancelled) logFailure(ctx.log, status.code, err);
    finish(status);
  };
  const bound = timeouts.add(() => {
    const err = new AuthError('deadline_exceeded', 'the call took too long');
    ctx.abort(err);
    fail(err);
  });
  // Any throw or rejection, synchronous or not, ends as a status: never an unhandled rejection.
  try {
    // With tracing on, the handler runs in the call's trace context; off, no closure is made.
    (ctx.traceContext ? withContext(ctx.traceContext, () => run(ctx)) : run(ctx)).then((answer) => {
      try {
        finish(null, response(method, answer));
      } catch (err) {
        fail(err);
      }
    }, fail);
  } catch (err) {
    fail(err);
  }
}

/** Server-streaming and bidi: writes each response as it comes, with backpressure. */
async function stream(
  call: grpc.ServerWritableStream<object, object> | grpc.ServerDuplexStream<object, object>,
  method: DescMethod,
  run: (ctx: CallContext) => AsyncIterable<Response<DescMessage>>,
): Promise<void> {
  const ctx: CallState = callContext(call.metadata);
  // The stream's body runs in the call's trace context (when tracing is on).
  return withContext(ctx.traceContext, () => streamIn(ctx, call, method, run));
}

async function streamIn(
  ctx: CallState,
  call: grpc.ServerWritableStream<object, object> | grpc.ServerDuplexStream<object, object>,
  method: DescMethod,
  run: (ctx: CallContext) => AsyncIterable<Response<DescMessage>>,
): Promise<void> {
  call.on('cancelled', () => ctx.abort(new AuthError('deadline_exceeded', 'the call was cancelled')));
  try {
    for await (const message of run(ctx)) {
      if (call.cancelled) return;
      if (!call.write(response(method, message))) await once(call, 'drain', { signal: ctx.signal });
    }
    if (!call.cancelled) call.end();
  } catch (err) {
    if (call.cancelled) return;
    const status = toStatus(err);
    logFailure(ctx.log, status.code, err);
    call.emit('error', status);
  }
}

/**
 * The requests of a streaming call, each checked as `decoded` does. Read with
 * `destroyOnReturn: false`: Node's readable iterator otherwise destroys the call when the loop
 * ends, the writable side with it, so a client that half-closes at once (grpcio's
 * `stub(iter([req]))`, grpc_cli) would never see the responses or the status written after.
 */
async function* requestsOf(call: grpc.ServerReadableStream<object, object> | grpc.ServerDuplexStream<object, object>): AsyncIterable<MessageShape<DescMessage>> {
  for await (const request of call.iterator({ destroyOnReturn: false })) yield decoded<MessageShape<DescMessage>>(request);
  // A call already known to be cancelled is not a half-close. (A grpc-js client's cancel sends
  // END_STREAM before RST_STREAM: that one reads as a half-close, and its answer goes nowhere.)
  if (call.cancelled) throw new AuthError('deadline_exceeded', 'the call was cancelled');
}
