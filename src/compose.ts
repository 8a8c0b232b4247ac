import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerOptions } from '@grpc/grpc-js';
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { AccessTokenIssuer, AccessTokenVerifier } from './core/access-token.js';
import { AccountFlows, AdminFlows } from './core/accounts.js';
import { Introspector } from './core/introspector.js';
import { LoginThrottle } from './core/login-throttle.js';
import { createKeySet, generateEcKey, hmacSigningKey, KeyRing, loadEcKeyFiles, type KeySet } from './core/keys.js';
import { COMMON_PASSWORDS, PasswordDenylist, readDenylistFile } from './core/password-denylist.js';
import { ARGON2ID_OWASP, Argon2Hasher, type PasswordHasher } from './core/password-hasher.js';
import { OpaqueRefreshTokens } from './core/refresh-token.js';
import { RegisterFlow } from './core/register.js';
import { ServiceAccountAdmin, ServiceTokenFlow } from './core/service-accounts.js';
import { SessionFlows } from './core/session-flows.js';
import { MFA_DEFAULTS, SecondFactors } from './core/mfa.js';
import { PASSKEY_DEFAULTS, Passkeys } from './core/passkeys.js';
import { ApiKeys } from './core/api-keys.js';
import { PasswordResetRequests } from './core/password-reset.js';
import { WebhookDelivery } from './reset-hook.js';
import { AccountService } from '../gen/auth/v1/account_pb.js';
import { AdminService } from '../gen/auth/v1/admin_pb.js';
import { AuthService } from '../gen/auth/v1/auth_pb.js';
import { SecureService } from '../gen/auth/v1/secure_pb.js';
import { accountService } from './grpc/account-service.js';
import { adminService } from './grpc/admin-service.js';
import { authService } from './grpc/auth-service.js';
import { secureService } from './grpc/secure-service.js';
import { createAuthServer, served } from './grpc/server.js';
import { ReloadableTls } from './grpc/tls.js';
import { countEvents, createLogger } from './logging.js';
import { moduleDir } from './module-dir.js';
import { Metrics } from './metrics.js';
import { systemRandom, type Random } from './random.js';
import type { AuthServiceApp } from './app.js';
import { startService } from './run.js';
import { givenStore, storeBackend, type StoreObserver } from './store/backends.js';
import { MaintenanceSwitch, refuseWritesDuring } from './store/maintenance-guard.js';
import { seedFileUsers } from './users-file-seed.js';
import { guardStore, OPERATIONS } from './store/guarded-store.js';
import type { Store } from './store/store.js';
import { noteEvent, traced, tracingWith } from './tracing.js';
import { readUsersFile } from './users-file.js';

/** Everything the service is made of that a test or an embedding may replace. */
export interface ServiceOverrides {
  readonly clock?: Clock;
  readonly random?: Random;
  readonly log?: Logger;
  /** A store of your own; it gets `AUTH_STORE_TIMEOUT` as its bound. */
  readonly store?: Store;
  readonly hasher?: PasswordHasher;
  readonly keys?: KeySet;
  /** grpc-js options over the built-in limits. */
  readonly serverOptions?: ServerOptions;
  /**
   * Turns tracing on with this tracer (main.ts passes the OTEL_*-configured SDK's; tests an
   * in-memory one). Without it no span is made.
   */
  readonly tracer?: Tracer;
}

/** Store operations traced as child spans (not the lifecycle ones, which no call makes). */
const TRACED_STORE_OPERATIONS = OPERATIONS.filter((op) => op !== 'connect' && op !== 'ping' && op !== 'close');

/** Verified access tokens remembered by Validate and the interceptor (about 1 KiB each). */
const VERIFIED_TOKEN_CACHE = 10_000;

/**
 * Where `npm run generate` writes the descriptor set (with comments) that reflection serves:
 * gen/ at the package root, one level up from src/, two from dist/src/, three from dist/esm/src/.
 */
export const DESCRIPTOR_SET_PATH = [join(moduleDir, '..', 'gen'), join(moduleDir, '..', '..', 'gen'), join(moduleDir, '..', '..', '..', 'gen')]
  .map((dir) => join(dir, 'descriptors.binpb'))
  .find((path) => existsSync(path)) ?? join(moduleDir, '..', 'gen', 'descriptors.binpb');

function loadKeys(config: Config, log: Logger): KeySet {
  if (config.jwtAlg === 'HS256') return createKeySet([hmacSigningKey(config.jwtSecret!)]);
  if (config.signingKeyFiles.length > 0) return loadEcKeyFiles(config.signingKeyFiles);
  log.warn(
    { event: 'ephemeral_key' },
    'DEVELOPMENT MODE: no AUTH_SIGNING_KEY_FILE, signing with an ephemeral key. Every token dies with this process; never run like this in production.',
  );
  return createKeySet([generateEcKey()]);
}

/** What the store reports, as log lines and metrics. */
function storeObserver(log: Logger, metrics: Metrics, clock: Clock): StoreObserver {
  return {
    switched: (from, to) => {
      metrics.postgres.switched();
      log.warn({ event: 'store_switched', from, to }, 'database: writing to another host now (a failover)');
    },
    poolerDetected: () => log.info({ event: 'store_pooler_detected' }, 'database: PgBouncer in transaction mode answers; unnamed statements and per-transaction timeouts from now on'),
    retried: (sqlState) => metrics.postgres.retried(sqlState),
    acquired: (waitMs) => metrics.postgres.acquired(waitMs),
    failed: (cause) => metrics.postgres.failed(cause),
    swept: (rows) => metrics.swept(rows, clock.now()),
  };
}

/**
 * The one composition root: builds the whole service from a validated configuration. Reading
 * files (keys, users, TLS) happens here, so a bad file stops start-up with a message naming it;
 * nothing listens and no timer runs until `start`.
 */
export function composeService(config: Config, overrides: ServiceOverrides = {}): AuthServiceApp {
  const clock = overrides.clock ?? systemClock;
  const random = overrides.random ?? systemRandom;
  const baseLog = overrides.log ?? createLogger(config.logLevel);
  const metrics = new Metrics({ store: config.store });
  const backend = overrides.store ? givenStore(overrides.store, config) : storeBackend(config, clock, storeObserver(baseLog, metrics, clock));
  metrics.watch({ liveSessions: backend.liveSessions });
  if (backend.postgres) {
    const postgres = backend.postgres;
    let schema: { at: number; version: Promise<number | undefined> } | undefined;
    metrics.watch({
      pool: () => postgres.poolState(),
      writer: () => postgres.target,
      // Read at most once a minute: a scrape never waits on the database for long.
      schemaVersion: () => {
        if (!schema || clock.now() - schema.at > 60_000) schema = { at: clock.now(), version: postgres.schemaVersion().catch(() => undefined) };
        return schema.version;
      },
    });
  }
  // Every audit event counts, in calls (their loggers are children of this one) and outside them.
  const tracing = tracingWith(overrides.tracer);
  const log = countEvents(baseLog.child({}), (event, fields) => {
    metrics.event(event);
    if (tracing) noteEvent(event, fields);
  });
  const keys = new KeyRing(overrides.keys ?? loadKeys(config, log));
  for (const key of keys.all) log.info({ event: 'key_loaded', kid: key.kid, alg: key.alg, signing: key === keys.signing }, 'signing key loaded');
  metrics.watch({ signingKey: () => ({ kid: keys.signing.kid, alg: keys.alg }) });
  const guarded = guardStore(backend.store, { timeoutMs: backend.timeoutMs, clock, onDone: (operation, seconds, failure) => metrics.storeOperation(operation, seconds, failure) });
  // Hashes run on threads below the main thread's priority (AUTH_HASH_NICE): a login flood takes
  // the cores the token checks leave, not theirs.
  const ownHasher = overrides.hasher
    ? undefined
    : new Argon2Hasher({
        ...ARGON2ID_OWASP,
        concurrency: config.hashConcurrency,
        maxQueue: 64 * config.hashConcurrency,
        lowPriority: config.hashNice > 0,
        nice: config.hashNice,
        onPriority: (lowered) => {
          if (!lowered) log.warn({ event: 'hash_priority_normal' }, 'password hashing runs at the main thread\'s priority (not Linux, a process at nice 19, or setpriority refused): a login flood slows token checks');
        },
      });
  const baseHasher = overrides.hasher ?? (ownHasher as Argon2Hasher);
  // With tracing on, each store operation and password hash of a call is a child span of it.
  const maintenance = new MaintenanceSwitch();
  const readOnly = refuseWritesDuring(guarded, maintenance);
  const store = tracing ? traced(tracing, readOnly, 'store', TRACED_STORE_OPERATIONS, { 'db.system': config.store === 'postgres' ? 'postgresql' : config.store }) : readOnly;
  metrics.watch({ maintenance: () => maintenance.on });
  const hasher = tracing ? traced(tracing, baseHasher, 'password', ['hash', 'verify', 'verifyDummy']) : baseHasher;
  if (baseHasher instanceof Argon2Hasher) metrics.watch({ hashLoad: () => baseHasher.load });

  const tokenOptions = { issuer: config.issuer, audience: config.audience, accessTtlMs: config.accessTtlMs, clockSkewMs: config.clockSkewMs };
  const accessTokens = new AccessTokenIssuer(keys, tokenOptions, clock, random);
  const introspector = new Introspector(new AccessTokenVerifier(keys, tokenOptions, clock), store, clock, {
    cacheSize: VERIFIED_TOKEN_CACHE,
    clockSkewMs: config.clockSkewMs,
    mfaRoles: config.mfaRequiredRoles,
  });
  const refreshTokens = new OpaqueRefreshTokens(random, {
    get signing() {
      return keys.tagKeys.signing;
    },
    get all() {
      return keys.tagKeys.all;
    },
  });
  const fileUsers = config.usersFile === undefined ? [] : readUsersFile(config.usersFile);
  const denylist = new PasswordDenylist([...COMMON_PASSWORDS, ...(config.passwordDenylistFile === undefined ? [] : readDenylistFile(config.passwordDenylistFile))]);
  const policy = { minLength: config.passwordMinLength, denylist };
  const register = new RegisterFlow(
    { users: store, hasher, random, rates: store },
    {
      ...policy,
      registration: config.registration,
      perAddress: { limit: config.registerPerAddressPerHour, windowMs: 3_600_000 },
      overall: { limit: config.registerPerMinute, windowMs: 60_000 },
    },
  );
  const throttle = new LoginThrottle(store);
  const factors = new SecondFactors(
    { secrets: store, users: store, throttle, hasher, random, clock },
    { totpIssuer: config.totpIssuer, mfaRoles: config.mfaRequiredRoles, ...MFA_DEFAULTS },
  );
  const delivery =
    config.passwordResetHookUrl === undefined
      ? undefined
      : new WebhookDelivery({ url: config.passwordResetHookUrl, secret: config.passwordResetHookSecret!, clock, random, log: log.child({ component: 'reset-hook' }) });
  const resets = new PasswordResetRequests({ users: store, rates: store, factors, delivery });
  const sessions = new SessionFlows({ sessions: store, hasher, throttle, accessTokens, refreshTokens, random, secondFactors: factors }, config);
  const accountDeps = { users: store, hasher, random, sessions, throttle };
  const apiKeySecret = config.apiKeySecret !== undefined ? Buffer.from(config.apiKeySecret) : config.production ? undefined : random.bytes(32);
  if (config.apiKeySecret === undefined && !config.production) log.warn({ event: 'api_key_secret_ephemeral' }, 'AUTH_API_KEY_SECRET unset: API keys use a random secret of this process (they stop working at restart, and on other instances)');
  const apiKeys = new ApiKeys(
    {
      store,
      owners: { getOwner: async (id) => (id.startsWith('sva_') ? await store.getServiceAccount(id).then((a) => a && { roles: a.roles, username: a.name }) : await store.getUser(id)) },
      throttle,
      accessTokens,
      random,
      clock,
    },
    { secret: apiKeySecret, maxTtlMs: config.apiKeyMaxTtlMs, maxPerOwner: config.apiKeysPerOwner, mfaRoles: config.mfaRequiredRoles },
  );
  const passkeys = new Passkeys(
    { store, secrets: store, users: store, rates: store, throttle, random, clock, spendCode: (code, refusal, ctx) => factors.spendForChange(code, refusal, ctx) },
    {
      rpId: config.webauthnRpId,
      rpName: config.webauthnRpName,
      origins: config.webauthnOrigins,
      ...PASSKEY_DEFAULTS,
      startsPerMinute: config.passkeyStartsPerAddress,
    },
  );
  const serviceTokens = new ServiceTokenFlow({ accounts: store, throttle, accessTokens, clock }, { issuer: config.issuer, clockSkewMs: config.clockSkewMs });

  const server = createAuthServer({
    services: [
      served(AuthService, authService({ register, sessions, introspector, serviceTokens, jwksJson: () => keys.jwksJson, factors, resets, policy, passkeys, apiKeys })),
      served(SecureService, secureService(clock)),
      served(AccountService, accountService(new AccountFlows(accountDeps, policy), factors, sessions, passkeys, apiKeys)),
      served(AdminService, adminService(new AdminFlows(accountDeps, policy), new ServiceAccountAdmin({ accounts: store, random }), factors, passkeys, apiKeys)),
    ],
    mfaRequiredServices: config.adminRequireMfa ? [AdminService.typeName] : [],
    authenticate: (token) => introspector.introspect(token),
    descriptorSet: readFileSync(DESCRIPTOR_SET_PATH),
    log,
    clock,
    random,
    callTimeoutMs: config.callTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    trustedProxies: config.trustedProxies,
    tracing,
    connectionLimits: { maxConnectionsPerAddress: config.maxConnectionsPerAddress, maxConnections: config.maxConnections },
    ...(overrides.serverOptions ? { serverOptions: overrides.serverOptions } : {}),
    observer: { onCallEnd: (method, code, seconds) => metrics.observeCall(method, code, seconds) },
  });

  const tls = config.tls ? new ReloadableTls(config.tls) : undefined;
  if (!tls && config.production && config.allowInsecure) {
    log.warn({ event: 'insecure_transport' }, 'plaintext gRPC in production (AUTH_ALLOW_INSECURE=true): TLS must end in front of this service');
  }
  const app: AuthServiceApp = {
    config,
    clock,
    server,
    store,
    backend,
    maintenance,
    keys,
    log,
    metrics,
    tls,
    transport: tls ? (tls.mutual ? 'mtls' : 'tls') : 'plaintext',
    seedUsers: () => seedFileUsers(store, fileUsers, log),
    reloadKeys() {
      // Only key files can be read again; an HS256 secret or an ephemeral key stays as it is.
      if (config.jwtAlg !== 'ES256' || config.signingKeyFiles.length === 0 || overrides.keys) return undefined;
      keys.replace(loadEcKeyFiles(config.signingKeyFiles));
      // Tokens verified under a key that is gone must be checked again.
      introspector.forgetVerified();
      return keys;
    },
    start: (address) => startService(app, address),
    closeHasher: () => ownHasher?.close() ?? Promise.resolve(),
  };
  return app;
}
