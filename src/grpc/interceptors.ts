import { Metadata, ServerInterceptingCall, status as Status, type ServerInterceptor } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { VerifyResult } from '../core/access-token.js';
import type { Random } from '../clock.js';
import type { MethodPolicy } from './access-policy.js';
import { CallTimeouts } from './call-timeouts.js';
import { addressOf, attachCallContext, callContext, principalOf, type CallContext } from './call-context.js';
import { logFailure, toStatus } from './status.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Outermost interceptor: gives every call a request id (the caller's `x-request-id` when it is
 * sane, else a new one), a child logger, and one log line when the call ends with its status and
 * duration. It logs only an allow-list of fields: never metadata, requests or responses.
 */
export interface CallObserver {
  /** Called as each call ends. */
  onCallEnd?(method: string, code: string, seconds: number): void;
}

export function loggingInterceptor(log: Logger, random: Random, observer: CallObserver = {}): ServerInterceptor {
  const prefix = random.bytes(4).toString('hex');
  let counter = 0;
  return (method, call) => {
    const started = process.hrtime.bigint();
    let ctx: CallContext | undefined;
    let done = false;
    const logEnd = (code: Status) => {
      if (done) return;
      done = true;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const fields = { code: Status[code], ms: Math.round(ms * 1000) / 1000 };
      (ctx?.log ?? log.child({ method: method.path, clientAddress: addressOf(call.getPeer()) })).info(fields, 'call');
      observer.onCallEnd?.(method.path, fields.code, ms / 1000);
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const offered = metadata.get('x-request-id');
            const requestId = offered.length === 1 && typeof offered[0] === 'string' && REQUEST_ID.test(offered[0]) ? offered[0] : `${prefix}-${++counter}`;
            const clientAddress = addressOf(call.getPeer());
            ctx = { requestId, log: log.child({ reqId: requestId, method: method.path, clientAddress }), clientAddress, principal: undefined };
            attachCallContext(metadata, ctx);
            nextMetadata(metadata);
          },
          onCancel: () => logEnd(Status.CANCELLED),
        }),
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
}

export interface BearerOptions {
  /** Method path to policy; a path missing here is denied. */
  readonly policies: ReadonlyMap<string, MethodPolicy>;
  /** Verifies a token and checks its session: the same introspection Validate uses. */
  readonly authenticate: (token: string) => Promise<VerifyResult>;
  /** Upper bound (ms) on one token check. */
  readonly timeoutMs: number;
}

// RFC 6750 section 2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 section 11.1).
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * Guards every method by its policy: public methods pass; others need exactly one
 * `authorization: Bearer <jwt>` whose token verifies and whose session is live, and the roles
 * the method requires. The token is checked in `onReceiveMetadata` and the call only proceeds on
 * success (grpc-js holds the request message meanwhile). The principal reaches the handler
 * through the call context.
 */
export function bearerInterceptor(options: BearerOptions): ServerInterceptor {
  const timeouts = new CallTimeouts(options.timeoutMs);
  return (method, call) => {
    const policy = options.policies.get(method.path);
    if (policy?.public) return new ServerInterceptingCall(call);
    const reject = (code: Status, details: string) => call.sendStatus({ code, details });
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            if (!policy) return reject(Status.PERMISSION_DENIED, 'method has no access policy');
            const values = metadata.get('authorization');
            if (values.length === 0) return reject(Status.UNAUTHENTICATED, 'missing bearer token');
            if (values.length > 1) return reject(Status.UNAUTHENTICATED, 'expected exactly one authorization header');
            const match = typeof values[0] === 'string' ? BEARER.exec(values[0]) : null;
            if (!match) return reject(Status.UNAUTHENTICATED, 'authorization must be "Bearer <access token>"');
            // The check gets the same bound as a handler's work: a hung store fails the call, closed.
            let settled = false;
            const settle = (action: () => void) => {
              if (settled) return;
              settled = true;
              timeouts.done(bound);
              action();
            };
            const bound = timeouts.add(() => settle(() => reject(Status.DEADLINE_EXCEEDED, 'token check took too long')));
            options.authenticate(match[1]!).then(
              (result) =>
                settle(() => {
                  if (!result.ok) return reject(Status.UNAUTHENTICATED, `access token is not valid: ${result.reason.replaceAll('_', ' ')}`);
                  const missing = policy.requiredRoles.filter((role) => !result.claims.roles.includes(role));
                  if (missing.length > 0) return reject(Status.PERMISSION_DENIED, `requires role ${missing.join(', ')}`);
                  callContext(metadata).principal = principalOf(result.claims);
                  nextMetadata(metadata);
                }),
              (err: unknown) =>
                settle(() => {
                  const status = toStatus(err);
                  logFailure(callContext(metadata).log, status.code, err);
                  reject(status.code, status.details);
                }),
            );
          },
        }),
    });
  };
}
