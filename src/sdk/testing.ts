import { randomBytes } from 'node:crypto';
import type { ServerOptions } from '@grpc/grpc-js';
import type { DestinationStream } from 'pino';
import { ManualClock } from '../clock.js';
import type { AuthServiceApp, RunningService } from '../app.js';
import { composeService } from '../compose.js';
import { loadConfig, type Env } from '../config.js';
import { newId } from '../core/ids.js';
import type { Tracer } from '@opentelemetry/api';
import { createKeySet, generateEcKey, type KeySet } from '../core/keys.js';
import { Argon2Hasher, type PasswordHasher } from '../core/password-hasher.js';
import { createLogger } from '../logging.js';
import type { Store } from '../store/store.js';
import { createAuthClient, type AuthClient } from './client.js';

/**
 * The test kit (`grpc-auth-service/testing`): the real auth service in-process on 127.0.0.1:0,
 * memory store, an ephemeral key, a clock the test moves, and helpers to create users and mint
 * tokens for a role. For backend teams' own jest suites (and this project's).
 */
export interface TestAuthServerOptions {
  /** The clock the service runs on: time (and every timer of the service) moves only when the test moves it. */
  readonly clock?: ManualClock;
  /** Extra AUTH_* settings, e.g. { AUTH_ACCESS_TTL: '60s' }. Registration limits are off unless set here. */
  readonly env?: Env;
  /** Where log lines go (JSON lines); silent unless AUTH_LOG_LEVEL is set in `env`. */
  readonly logDestination?: DestinationStream;
  /** Replaces the store (the memory store by default). */
  readonly store?: Store;
  /** Replaces the password hasher (argon2id with small parameters by default). */
  readonly hasher?: PasswordHasher;
  /** Replaces the signing keys (a fresh ES256 key by default; HS256 and key files come from `env`). */
  readonly keys?: KeySet;
  /** grpc-js server options for the test server (limits, keepalive). */
  readonly serverOptions?: ServerOptions;
  /** Turns tracing on with this OpenTelemetry tracer (a span per call, store and hash children). */
  readonly tracer?: Tracer;
}

/** A user {@link TestAuthServer.createUser} made. */
export interface TestUser {
  /** Its id (`usr_…`). */
  readonly userId: string;
  /** Its name, as given. */
  readonly username: string;
  /** A random password it logs in with. */
  readonly password: string;
  /** The roles it holds. */
  readonly roles: readonly string[];
}

/** The real service running in-process on 127.0.0.1:0, with the memory store: see {@link startTestAuthServer}. */
export interface TestAuthServer {
  /** host:port to dial. */
  readonly address: string;
  /** The issuer and audience its tokens carry (for local verification). */
  readonly issuer: string;
  /** The audience its tokens carry. */
  readonly audience: string;
  /** The clock it runs on: `clock.advance(ms)` moves every expiry and timer of the service. */
  readonly clock: ManualClock;
  /** A client for the server (closed by close()). */
  readonly client: AuthClient;
  /** The composed service: its `config`, `store`, `log` ... for assertions on what it holds. */
  readonly app: AuthServiceApp;
  /** The running server: its port, and `close`. */
  readonly running: RunningService;
  /** Creates a user with the given roles and a random password. */
  createUser(username: string, roles?: readonly string[]): Promise<TestUser>;
  /** Logs a fresh user with these roles in and returns the access token. */
  tokenFor(roles?: readonly string[]): Promise<string>;
  /** Shuts down: calls still in flight are cut at once (the grace runs on the test's clock). */
  close(): Promise<void>;
}

/** Real argon2id with small parameters: the same code path, milliseconds instead of tens per hash. */
export function fastTestHasher(): Argon2Hasher {
  return new Argon2Hasher({ memoryCost: 1024, timeCost: 1, parallelism: 1, concurrency: 4, maxQueue: 1000, newHashConcurrency: 4, newHashQueue: 1000 });
}

/**
 * Starts the real service in-process for your tests, on 127.0.0.1:0 with the memory store, an
 * ephemeral signing key and fast password hashing. Close it in your teardown.
 *
 * @example
 * ```ts
 * const clock = new ManualClock();
 * const auth = await startTestAuthServer({ clock });
 * const token = await auth.tokenFor(['admin']);
 * clock.advance(16 * 60_000); // the token has expired
 * await auth.close();
 * ```
 */
export async function startTestAuthServer(options: TestAuthServerOptions = {}): Promise<TestAuthServer> {
  const clock = options.clock ?? new ManualClock(Date.now());
  // Registration limits are off unless a test sets them: a suite registers from one address.
  const config = loadConfig({ AUTH_LOG_LEVEL: 'silent', AUTH_REGISTER_PER_ADDRESS: '1000000', AUTH_REGISTER_PER_MINUTE: '1000000', ...options.env });
  const hasher = options.hasher ?? fastTestHasher();
  const keys = options.keys ?? (config.jwtAlg === 'ES256' && config.signingKeyFiles.length === 0 ? createKeySet([generateEcKey()]) : undefined);
  const app = composeService(config, {
    clock,
    hasher,
    log: createLogger(config.logLevel, options.logDestination),
    ...(keys ? { keys } : {}),
    ...(options.store ? { store: options.store } : {}),
    ...(options.serverOptions ? { serverOptions: options.serverOptions } : {}),
    ...(options.tracer ? { tracer: options.tracer } : {}),
  });
  const running = await app.start('127.0.0.1:0');
  const address = `127.0.0.1:${running.port}`;
  const client = createAuthClient(address);
  let n = 0;
  const createUser = async (username: string, roles: readonly string[] = []): Promise<TestUser> => {
    const password = randomBytes(18).toString('base64url');
    const user = { id: newId({ bytes: randomBytes }, 'usr'), username, passwordHash: await hasher.hash(password), roles: [...roles], disabled: false, origin: 'api' as const };
    if ((await app.store.createUser(user)) === 'exists') throw new Error(`test user ${username} exists`);
    return { userId: user.id, username, password, roles };
  };
  return {
    address,
    issuer: config.issuer,
    audience: config.audience,
    clock,
    client,
    app,
    running,
    createUser,
    async tokenFor(roles = []) {
      const user = await createUser(`test-user-${++n}-${randomBytes(4).toString('hex')}`, roles);
      return (await client.auth.login({ username: user.username, password: user.password })).accessToken;
    },
    async close() {
      client.close();
      const grace = 1000;
      const closed = running.close(grace);
      // The grace runs on the test's clock: move it, so nothing still in flight holds the close.
      setImmediate(() => clock.advance(grace));
      await closed;
    },
  };
}

export { ManualClock };
