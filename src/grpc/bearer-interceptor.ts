import { ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import { systemClock, type Clock } from '../clock.js';
import { certificateMatches, hasSecondFactor, type Introspection, type Principal } from '../core/introspector.js';
import { AuthError } from '../errors.js';
import type { MethodPolicy } from './access-policy.js';
import { callContext } from './call-context.js';
import { CallTimeouts } from './call-timeouts.js';
import { peerCertificateThumbprint } from './peer-certificate.js';
import { logFailure, toStatus } from './status.js';
import { incomingTraceContext, withContext } from '../tracing.js';

export interface BearerOptions {
  /** Method path to policy; a path missing here is denied. */
  readonly policies: ReadonlyMap<string, MethodPolicy>;
  /** Verifies a token and checks its session: the same introspection Validate uses. */
  readonly authenticate: (token: string) => Promise<Introspection>;
  /** Upper bound on one token check. */
  readonly timeoutMs: number;
  readonly clock?: Clock;
}

// RFC 6750 section 2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 section 11.1).
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/**
 * Guards every method by its policy: public methods pass; others need exactly one
 * `authorization: Bearer <jwt>` whose token verifies and whose session is live, and the roles
 * the method requires. The token is checked in `onReceiveMetadata` and the call only proceeds on
 * success (grpc-js holds the request message meanwhile). The principal reaches the handler
 * through the call context. Every refusal is an AuthError mapped by the one status table.
 */
export function bearerInterceptor(options: BearerOptions): ServerInterceptor {
  const timeouts = new CallTimeouts(options.timeoutMs, options.clock ?? systemClock);
  return (method, call) => {
    const policy = options.policies.get(method.path);
    if (policy?.public) return new ServerInterceptingCall(call);
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const refuse = (err: unknown) => {
              const status = toStatus(err);
              logFailure(callContext(metadata).log, status.code, err);
              call.sendStatus(status);
            };
            if (!policy) return refuse(new AuthError('permission_denied', 'method has no access policy'));
            const values = metadata.get('authorization');
            if (values.length === 0) return refuse(new AuthError('unauthenticated', 'missing bearer token'));
            if (values.length > 1) return refuse(new AuthError('unauthenticated', 'expected exactly one authorization header'));
            const match = typeof values[0] === 'string' ? BEARER.exec(values[0]) : null;
            if (!match) return refuse(new AuthError('unauthenticated', 'authorization must be "Bearer <access token>"'));
            // The check gets the same bound as a handler's work: a hung store fails the call, closed.
            let settled = false;
            const settle = (action: () => void) => {
              if (settled) return;
              settled = true;
              timeouts.done(bound);
              action();
            };
            const bound = timeouts.add(() => settle(() => refuse(new AuthError('deadline_exceeded', 'token check took too long'))));
            // Traced: the check runs in the call's span (this server's), or, in a server with no
            // tracing of its own, in the trace the caller sent, so a remote Validate carries it on.
            const traceContext = callContext(metadata).traceContext ?? incomingTraceContext(metadata);
            (traceContext ? withContext(traceContext, () => options.authenticate(match[1]!)) : options.authenticate(match[1]!)).then(
              (result) =>
                settle(() => {
                  if (!result.ok) return refuse(new AuthError('unauthenticated', `access token is not valid: ${result.reason.replaceAll('_', ' ')}`));
                  // RFC 8705 section 3: a certificate-bound token only with its own certificate.
                  if (!certificateMatches(result.principal, peerCertificateThumbprint(call.getAuthContext()))) {
                    return refuse(new AuthError('unauthenticated', 'access token is not valid: certificate mismatch'));
                  }
                  const stepUp = stepUpRefusal(policy, result.principal, (options.clock ?? systemClock).now());
                  if (stepUp) return refuse(stepUp);
                  const missing = policy.requiredRoles.filter((role) => !result.principal.roles.includes(role));
                  // A role held but withheld for want of a second factor (AUTH_MFA_REQUIRED_ROLES) asks for the factor.
                  if (missing.length > 0 && missing.every((role) => result.principal.withheldRoles.includes(role))) {
                    return refuse(new AuthError('insufficient_authentication', `role ${missing.join(', ')} needs a sign-in with a second factor`, { reason: 'MFA_REQUIRED' }));
                  }
                  if (missing.length > 0) return refuse(new AuthError('permission_denied', `requires role ${missing.join(', ')}`));
                  callContext(metadata).principal = result.principal;
                  nextMetadata(metadata);
                }),
              (err: unknown) => settle(() => refuse(err)),
            );
          },
        }),
    });
  };
}

/**
 * The step-up rule of a method's policy (RFC 9470 for gRPC, declared per RPC): a second factor
 * when `mfa`, an authentication at most `maxAgeSeconds` old when set. Undefined when the
 * principal meets it; otherwise the refusal, whose ErrorInfo reason tells the client what to do.
 */
export function stepUpRefusal(policy: MethodPolicy, principal: Principal, nowMs: number): AuthError | undefined {
  if (policy.mfa && !hasSecondFactor(principal)) {
    const message = principal.subjectType === 'service_account' ? 'this method needs a user signed in with a second factor' : 'this method needs a sign-in with a second factor';
    return new AuthError('insufficient_authentication', message, { reason: 'MFA_REQUIRED' });
  }
  if (policy.maxAgeSeconds > 0 && Math.floor(nowMs / 1000) - principal.authTime > policy.maxAgeSeconds) {
    return new AuthError('insufficient_authentication', `this method needs a sign-in within the last ${policy.maxAgeSeconds} s`, {
      reason: 'REAUTHENTICATION_REQUIRED',
      reasonMetadata: { max_age_seconds: String(policy.maxAgeSeconds) },
    });
  }
  return undefined;
}
