import { Metadata, ServerInterceptingCall, status as Status, type ServerInterceptor } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import { AuthError } from '../errors.js';
import type { Random } from '../random.js';
import { addressOf, attachCallContext, CallState } from './call-context.js';
import { CallTimeouts, type PendingTimeout } from './call-timeouts.js';
import { clientAddressResolver, type ClientAddressOf } from './client-address.js';
import { peerCertificateThumbprint } from './peer-certificate.js';
import { toStatus } from './status.js';
import { endCallSpan, startCallSpan, type Tracing } from '../tracing.js';
import type { Span } from '@opentelemetry/api';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export interface CallObserver {
  /** Called as each call ends. */
  onCallEnd?(method: string, code: string, seconds: number): void;
}

export interface LoggingOptions {
  readonly observer?: CallObserver | undefined;
  /**
   * A call whose first message has not arrived this long after its headers is ended with
   * DEADLINE_EXCEEDED: a stream that sends headers and then nothing would otherwise hold its
   * memory until the connection dies (the call's own bound starts only with its handler).
   */
  readonly requestTimeoutMs?: number;
  readonly clock?: Clock;
  /** Who the client is (default: the peer; see clientAddressResolver for trusted proxies). */
  readonly clientAddress?: ClientAddressOf | undefined;
  /** A SERVER span per call when set (see tracing.ts). */
  readonly tracing?: Tracing | undefined;
}

/**
 * Outermost interceptor: gives every call a request id (the caller's `x-request-id` when it is
 * sane, else a new one), a child logger, a bound on how long its request may take to arrive, and
 * one log line when the call ends with its status and duration. It logs only an allow-list of
 * fields: never metadata, requests or responses.
 */
export function loggingInterceptor(log: Logger, random: Random, options: LoggingOptions = {}): ServerInterceptor & { readonly awaitingRequests: number } {
  const prefix = random.bytes(4).toString('hex');
  const clientAddressOf = options.clientAddress ?? clientAddressResolver([]);
  const waiting = new CallTimeouts(options.requestTimeoutMs ?? 10_000, options.clock ?? systemClock);
  let counter = 0;
  const interceptor: ServerInterceptor = (method, call) => {
    // Durations are measured, not reckoned: a monotonic clock, not the injected one.
    const started = process.hrtime.bigint();
    let ctx: CallState | undefined;
    let span: Span | undefined;
    let done = false;
    let awaitingMessage: PendingTimeout | undefined;
    const stopWaiting = () => {
      if (awaitingMessage) waiting.done(awaitingMessage);
      awaitingMessage = undefined;
    };
    const logEnd = (code: Status) => {
      if (done) return;
      done = true;
      stopWaiting();
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const fields = { code: Status[code], ms: Math.round(ms * 1000) / 1000 };
      (ctx?.log ?? log.child({ method: method.path, clientAddress: addressOf(call.getPeer()) })).info(fields, 'call');
      options.observer?.onCallEnd?.(method.path, fields.code, ms / 1000);
      if (span) {
        if (ctx?.principal) span.setAttribute('enduser.id', ctx.principal.userId);
        endCallSpan(span, code, fields.code);
      }
    };
    return new ServerInterceptingCall(call, {
      start: (next) => {
        awaitingMessage = waiting.add(() => {
          awaitingMessage = undefined;
          ctx?.abort(new Error('no request'));
          call.sendStatus(toStatus(new AuthError('deadline_exceeded', 'the request did not arrive in time')));
        });
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const offered = metadata.get('x-request-id');
            const requestId = offered.length === 1 && typeof offered[0] === 'string' && REQUEST_ID.test(offered[0]) ? offered[0] : `${prefix}-${++counter}`;
            const clientAddress = clientAddressOf(call.getPeer(), metadata);
            ctx = new CallState(requestId, log.child({ reqId: requestId, method: method.path, clientAddress }), clientAddress, metadata, () => peerCertificateThumbprint(call.getAuthContext()));
            if (options.tracing) {
              const traced = startCallSpan(options.tracing, method.path, metadata, clientAddress);
              span = traced.span;
              ctx.traceContext = traced.context;
            }
            attachCallContext(metadata, ctx);
            nextMetadata(metadata);
          },
          onReceiveMessage: (message, nextMessage) => {
            stopWaiting();
            nextMessage(message);
          },
          // grpc-js calls this as every call's stream closes, also after its status was sent:
          // then there is nothing to abort (and an Error's stack would cost each call microseconds).
          onCancel: () => {
            if (done) return;
            ctx?.abort(new Error('cancelled'));
            logEnd(Status.CANCELLED);
          },
        });
      },
      sendStatus: (status, next) => {
        if (ctx) {
          const trailers = status.metadata ?? new Metadata();
          trailers.set('x-request-id', ctx.requestId);
          status = { ...status, metadata: trailers };
        }
        logEnd(status.code);
        next(status);
      },
    });
  };
  // Calls whose request has not arrived yet, for tests and the state budget.
  return Object.defineProperty(interceptor, 'awaitingRequests', { get: () => waiting.pending }) as ServerInterceptor & { readonly awaitingRequests: number };
}
