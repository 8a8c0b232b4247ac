import type { DescService } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Introspection } from '../core/introspector.js';
import type { Random } from '../random.js';
import { policiesFrom, withMfaRequired } from './access-policy.js';
import { bearerInterceptor } from './bearer-interceptor.js';
import { serviceDefinition } from './bridge.js';
import { serviceHandlers, type HandlerOptions, type ServiceImpl } from './handlers.js';
import { HealthService, ServingStatus } from './health.js';
import type { Tracing } from '../tracing.js';
import { listen, type Listener, type ListenerLimits } from './listener.js';
import { clientAddressResolver } from './client-address.js';
import { loggingInterceptor, type CallObserver } from './logging-interceptor.js';
import { ReflectionIndex, reflectionServices } from './reflection.js';

/**
 * Transport limits that fit an auth service: requests are a few KiB at most, so anything larger
 * is refused before it is parsed; connections that idle or live long are recycled.
 */
export const serverLimits = {
  'grpc.max_receive_message_length': 64 * 1024,
  // Reflection answers carry descriptor files (descriptor.proto is ~100 KiB with comments).
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.max_concurrent_streams': 128,
  'grpc.keepalive_time_ms': 2 * 60 * 60 * 1000,
  'grpc.keepalive_timeout_ms': 20 * 1000,
  'grpc.max_connection_idle_ms': 5 * 60 * 1000,
  'grpc.max_connection_age_ms': 30 * 60 * 1000,
  'grpc.max_connection_age_grace_ms': 30 * 1000,
  // Bound what one HTTP/2 session may buffer (MiB); Node's default here is effectively unlimited in grpc-js.
  'grpc-node.max_session_memory': 10,
} as const satisfies grpc.ServerOptions;

/** A service and its typed implementation, paired so a mismatch does not compile. */
export interface ServedService {
  readonly service: DescService;
  handlers(options: HandlerOptions): grpc.UntypedServiceImplementation;
}

export function served<S extends DescService>(service: S, impl: ServiceImpl<S>): ServedService {
  return { service, handlers: (options) => serviceHandlers(service, impl, options) };
}

export interface ServerParts {
  /** The contract's services (AuthService, SecureService, AccountService, AdminService …). */
  readonly services: readonly ServedService[];
  readonly authenticate: (token: string) => Promise<Introspection>;
  /** Services every method of which needs a second factor besides its own policy (AUTH_ADMIN_REQUIRE_MFA). */
  readonly mfaRequiredServices?: readonly string[];
  readonly descriptorSet: Uint8Array;
  readonly log: Logger;
  readonly clock: Clock;
  readonly random: Random;
  readonly callTimeoutMs: number;
  /** Sees every call's end (for metrics). */
  readonly observer?: CallObserver;
  /** grpc-js options over `serverLimits` (tests shorten the idle limit, for one). */
  readonly serverOptions?: grpc.ServerOptions;
  /** Connection caps of the listening socket. */
  readonly connectionLimits: ListenerLimits;
  /** Bound on a call's first message after its headers: streams that never send one are cut. */
  readonly requestTimeoutMs: number;
  /** Proxies whose `x-forwarded-for` names the client (AUTH_TRUSTED_PROXIES); none by default. */
  readonly trustedProxies?: readonly string[];
  /** A SERVER span per call when set (off by default: see tracing.ts). */
  readonly tracing?: Tracing | undefined;
}

export interface AuthServer {
  readonly grpcServer: grpc.Server;
  readonly health: HealthService;
  /** Binds and starts serving; resolves with the bound port (0 picks a free one). */
  listen(address: string, credentials?: grpc.ServerCredentials): Promise<number>;
  /** Open connections, in all and by client address. */
  connections(): { total: number; addresses: number };
  /** Calls whose request has not arrived yet (each is ended at AUTH_REQUEST_TIMEOUT). */
  awaitingRequests(): number;
  /** Health of every service: SERVING only while listening, not shutting down, and `ready` (e.g. the store answers). */
  setReady(ready: boolean): void;
  /**
   * Stops taking calls (health turns NOT_SERVING at once), lets in-flight calls finish for up to
   * `graceMs` on the clock, then closes whatever is left. Resolves when the server is down.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** The health name for liveness probes: SERVING while the process takes calls, whatever the store does. */
export const LIVENESS_CHECK = 'liveness';

export function createAuthServer(parts: ServerParts): AuthServer {
  const names = parts.services.map((s) => s.service.typeName);
  const reflection = reflectionServices(new ReflectionIndex(parts.descriptorSet, [...names, 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection']));
  // "" is the whole server (gRPC health checking protocol): SERVING when it can serve, the store
  // included; each service has its own status, the same. LIVENESS_CHECK only says the process
  // serves calls (a liveness probe must not restart instances because Redis is away).
  const healthNames = ['', ...names, LIVENESS_CHECK];
  const health = new HealthService(healthNames, ServingStatus.NOT_SERVING);
  const policies = withMfaRequired(policiesFrom(
    parts.services.map((s) => s.service),
    [health.definition, ...reflection.map((r) => r.definition)],
  ), parts.mfaRequiredServices ?? []);
  const handlerOptions = { callTimeoutMs: parts.callTimeoutMs, clock: parts.clock };

  const logging = loggingInterceptor(parts.log, parts.random, { observer: parts.observer, requestTimeoutMs: parts.requestTimeoutMs, clock: parts.clock, clientAddress: clientAddressResolver(parts.trustedProxies ?? []), tracing: parts.tracing });
  const grpcServer = new grpc.Server({
    ...serverLimits,
    ...parts.serverOptions,
    interceptors: [
      logging,
      bearerInterceptor({ policies, authenticate: parts.authenticate, timeoutMs: parts.callTimeoutMs, clock: parts.clock }),
    ],
  });
  for (const s of parts.services) grpcServer.addService(serviceDefinition(s.service), s.handlers(handlerOptions));
  grpcServer.addService(health.definition, serviceHandlers(health.service, health.implementation, handlerOptions));
  for (const r of reflection) grpcServer.addService(r.definition, r.implementation);

  let listening = false;
  let listener: Listener | undefined;
  let ready = true;
  let stopping = false;
  const update = () => {
    const status = listening && ready && !stopping ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    const alive = listening && !stopping ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    for (const name of healthNames) {
      const want = name === LIVENESS_CHECK ? alive : status;
      if (health.status(name) !== want) health.setStatus(name, want);
    }
  };

  return {
    grpcServer,
    health,
    async listen(address, credentials = grpc.ServerCredentials.createInsecure()) {
      listener = await listen(grpcServer, address, credentials, parts.connectionLimits);
      listening = true;
      update();
      return listener.port;
    },
    connections: () => listener?.connections() ?? { total: 0, addresses: 0 },
    awaitingRequests: () => logging.awaitingRequests,
    setReady: (value) => {
      ready = value;
      update();
    },
    shutdown: (graceMs) =>
      new Promise((resolve) => {
        stopping = true;
        update();
        health.endWatches();
        void listener?.close();
        const force = parts.clock.setTimer(graceMs, () => grpcServer.forceShutdown());
        grpcServer.tryShutdown(() => {
          force.cancel();
          resolve();
        });
      }),
  };
}
