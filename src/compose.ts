import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerOptions } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { systemClock, systemRandom, type Clock, type Random } from './clock.js';
import type { Config } from './config.js';
import { AccessTokenIssuer, AccessTokenVerifier } from './core/access-token.js';
import { Introspector } from './core/introspector.js';
import { LoginThrottle } from './core/login-throttle.js';
import { createKeySet, generateEcKey, hmacSigningKey, loadEcKeyFile, type KeySet } from './core/keys.js';
import { COMMON_PASSWORDS, PasswordDenylist, readDenylistFile } from './core/password-denylist.js';
import { ARGON2ID_OWASP, Argon2Hasher, type PasswordHasher } from './core/password-hasher.js';
import { RefreshTokenCodec } from './core/refresh-token.js';
import { RegisterFlow } from './core/register.js';
import { SessionFlows } from './core/session-flows.js';
import { authService } from './grpc/auth-service.js';
import { secureService } from './grpc/secure-service.js';
import { createAuthServer, type AuthServer } from './grpc/server.js';
import { ReloadableTls } from './grpc/tls.js';
import { countEvents, createLogger } from './logging.js';
import { Metrics } from './metrics.js';
import { MemoryStore } from './store/memory-store.js';
import { withFileUsers } from './store/file-users.js';
import { guardStore } from './store/guarded-store.js';
import { RedisStore } from './store/redis-store.js';
import type { Store } from './store/store.js';
import { readUsersFile } from './users-file.js';

/** Everything the service is made of; each part can be replaced (tests inject clock, store, hasher, keys). */
export interface ServiceOverrides {
  readonly clock?: Clock;
  readonly random?: Random;
  readonly log?: Logger;
  readonly store?: Store;
  readonly hasher?: PasswordHasher;
  readonly keys?: KeySet;
  /** grpc-js options over the built-in limits. */
  readonly serverOptions?: ServerOptions;
}

export interface AuthServiceApp {
  readonly config: Config;
  readonly server: AuthServer;
  readonly store: Store;
  readonly keys: KeySet;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The bound port of the metrics endpoint, once listening (undefined when off). */
  metricsPort(): number | undefined;
  /** Binds the configured (or given) address; resolves with the port. */
  listen(address?: string): Promise<number>;
  /** Re-reads the TLS files (SIGHUP); open connections are kept. Throws TlsError and keeps the old files' material on failure. */
  reloadTls(): void;
  /** 'tls', 'mtls' or 'plaintext'. */
  readonly transport: 'tls' | 'mtls' | 'plaintext';
  /** Graceful shutdown (see AuthServer.shutdown), then the store is closed. */
  close(graceMs?: number): Promise<void>;
}

/** How often the memory store drops expired entries. */
const SWEEP_INTERVAL_MS = 60_000;
/** Verified access tokens remembered by Validate and the interceptor (about 1 KiB each). */
const VERIFIED_TOKEN_CACHE = 10_000;
/** How often health checks that the store answers. */
const STORE_CHECK_INTERVAL_MS = 1000;

/**
 * Where `npm run generate` writes the descriptor set (with comments) that reflection serves:
 * gen/ at the package root, one level up from src/ and two from dist/src/.
 */
export const DESCRIPTOR_SET_PATH = [join(__dirname, '..', 'gen'), join(__dirname, '..', '..', 'gen')]
  .map((dir) => join(dir, 'descriptors.binpb'))
  .find((path) => existsSync(path)) ?? join(__dirname, '..', 'gen', 'descriptors.binpb');

function loadKeys(config: Config, log: Logger): KeySet {
  if (config.jwtAlg === 'HS256') return createKeySet([hmacSigningKey(config.jwtSecret!)]);
  if (config.signingKeyFile !== undefined) {
    return createKeySet(config.signingKeyFile.split(',').map((path) => loadEcKeyFile(path.trim())));
  }
  log.warn(
    { event: 'ephemeral_key' },
    'DEVELOPMENT MODE: no AUTH_SIGNING_KEY_FILE, signing with an ephemeral key. Every token dies with this process; never run like this in production.',
  );
  return createKeySet([generateEcKey()]);
}

/** The one composition root: builds the whole service from a validated configuration. */
export function composeService(config: Config, overrides: ServiceOverrides = {}): AuthServiceApp {
  const clock = overrides.clock ?? systemClock;
  const random = overrides.random ?? systemRandom;
  const baseLog = overrides.log ?? createLogger(config.logLevel);
  const keys = overrides.keys ?? loadKeys(config, baseLog);
  const revokedRetention = (config.accessTtl + config.clockSkew) * 1000;
  // Filled once `memory` exists; the gauge reads it at scrape time.
  let liveSessions: () => number | undefined = () => undefined;
  const metrics = new Metrics(() => liveSessions());
  // Every audit event counts, in calls (their loggers are children of this one) and outside them.
  const log = countEvents(baseLog.child({}), (event) => metrics.event(event));
  for (const key of keys.all) log.info({ event: 'key_loaded', kid: key.kid, alg: key.alg, signing: key === keys.signing }, 'signing key loaded');
  const memory = overrides.store || config.store !== 'memory' ? undefined : new MemoryStore({ revokedRetention });
  const store = guardStore(
    overrides.store ??
      memory ??
      new RedisStore({ url: config.redisUrl!, keyPrefix: config.redisKeyPrefix, commandTimeout: config.redisCommandTimeoutMs, revokedRetention }),
    // The built-in memory store answers within the call; anything else gets a deadline.
    overrides.store || !memory ? config.storeTimeout * 1000 : undefined,
    () => metrics.storeError(),
  );
  if (memory) liveSessions = () => memory.size().sessions;
  const hasher = overrides.hasher ?? new Argon2Hasher({ ...ARGON2ID_OWASP, concurrency: config.hashConcurrency, maxQueue: 64 * config.hashConcurrency });

  const tokenOptions = { issuer: config.issuer, audience: config.audience, accessTtl: config.accessTtl, clockSkew: config.clockSkew };
  const accessTokens = new AccessTokenIssuer(keys, tokenOptions, clock, random);
  const introspector = new Introspector(new AccessTokenVerifier(keys, tokenOptions, clock), store, clock, {
    cacheSize: VERIFIED_TOKEN_CACHE,
    clockSkew: config.clockSkew,
  });
  const refreshTokens = new RefreshTokenCodec(random);
  const users = withFileUsers(store, config.usersFile === undefined ? [] : readUsersFile(config.usersFile, clock.now()));
  const denylist = new PasswordDenylist([...COMMON_PASSWORDS, ...(config.passwordDenylistFile === undefined ? [] : readDenylistFile(config.passwordDenylistFile))]);
  const register = new RegisterFlow({ users, hasher, clock, random }, { registration: config.registration, minLength: config.passwordMinLength, denylist });
  const throttle = new LoginThrottle(store, clock);
  const sessions = new SessionFlows({ users, sessions: store, hasher, throttle, accessTokens, refreshTokens, clock, random }, config);

  const server = createAuthServer({
    authService: authService({ register, sessions, introspector, jwksJson: () => keys.jwksJson }),
    secureService: secureService(),
    authenticate: (token) => introspector.introspect(token),
    descriptorSet: readFileSync(DESCRIPTOR_SET_PATH),
    log,
    random,
    callTimeout: config.callTimeout,
    ...(overrides.serverOptions ? { serverOptions: overrides.serverOptions } : {}),
    observer: { onCallEnd: (method, code, seconds) => metrics.observeCall(method, code, seconds) },
  });

  // Health follows the store: NOT_SERVING while it cannot be reached, SERVING again once it can.
  let storeUp = true;
  const checkStore = async () => {
    const up = await store.ping().then(
      () => true,
      () => false,
    );
    if (up !== storeUp) {
      if (up) log.info({ event: 'store_recovered' }, 'store reachable again');
      else log.warn({ event: 'store_unavailable' }, 'store unreachable: health is NOT_SERVING');
    }
    storeUp = up;
    server.setReady(up);
  };

  // Read at composition so that bad TLS files stop start-up with a message naming the file.
  const tls = config.tls ? new ReloadableTls(config.tls) : undefined;
  if (!tls && config.production && config.allowInsecure) {
    log.warn({ event: 'insecure_transport' }, 'plaintext gRPC in production (AUTH_ALLOW_INSECURE=true): TLS must end in front of this service');
  }

  let sweeper: NodeJS.Timeout | undefined;
  let monitor: NodeJS.Timeout | undefined;
  let metricsServer: { port: number; close(): Promise<void> } | undefined;
  return {
    config,
    server,
    store,
    keys,
    log: baseLog,
    metrics,
    metricsPort: () => metricsServer?.port,
    transport: tls ? (tls.mutual ? 'mtls' : 'tls') : 'plaintext',
    reloadTls() {
      if (!tls) return;
      tls.reload();
      log.info({ event: 'tls_reloaded' }, 'TLS certificates re-read');
    },
    async listen(address = config.address) {
      // An unreachable store does not stop start-up: the service starts NOT_SERVING and recovers.
      await store.connect().catch(() => {});
      if (memory) {
        sweeper = setInterval(() => memory.sweep(clock.now()), SWEEP_INTERVAL_MS);
        sweeper.unref();
      }
      if (config.metricsAddress !== undefined) {
        metricsServer = await metrics.serve(config.metricsAddress);
        log.info({ event: 'metrics_listening', port: metricsServer.port }, 'metrics endpoint listening');
      }
      const port = await server.listen(address, tls?.credentials());
      await checkStore();
      monitor = setInterval(() => void checkStore(), STORE_CHECK_INTERVAL_MS);
      monitor.unref();
      return port;
    },
    async close(graceMs = config.shutdownGrace * 1000) {
      if (sweeper) clearInterval(sweeper);
      if (monitor) clearInterval(monitor);
      await metricsServer?.close();
      await server.shutdown(graceMs);
      await store.close();
    },
  };
}
