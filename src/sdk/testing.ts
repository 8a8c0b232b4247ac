import { randomBytes } from 'node:crypto';
import { ManualClock, type Clock } from '../clock.js';
import { composeService, type AuthServiceApp } from '../compose.js';
import { loadConfig, type Env } from '../config.js';
import { newId } from '../core/ids.js';
import { createKeySet, generateEcKey } from '../core/keys.js';
import { Argon2Hasher } from '../core/password-hasher.js';
import { createLogger } from '../logging.js';
import { createAuthClient, type AuthClient } from './client.js';

/**
 * The test kit (`grpc-auth-service/testing`): the real auth service in-process on 127.0.0.1:0,
 * memory store, an ephemeral key, and helpers to create users and mint tokens for a role. For
 * backend teams' own jest suites.
 */
export interface TestAuthServerOptions {
  /** A clock the test moves (`clock.advance(ms)`); the system clock when omitted. */
  readonly clock?: ManualClock;
  /** Extra AUTH_* settings, e.g. { AUTH_ACCESS_TTL: '60' }. */
  readonly env?: Env;
}

export interface TestUser {
  readonly userId: string;
  readonly username: string;
  readonly password: string;
  readonly roles: readonly string[];
}

export interface TestAuthServer {
  /** host:port to dial. */
  readonly address: string;
  /** The issuer and audience its tokens carry (for local verification). */
  readonly issuer: string;
  readonly audience: string;
  readonly clock: Clock;
  /** A client for the server (closed by close()). */
  readonly client: AuthClient;
  readonly app: AuthServiceApp;
  /** Creates a user with the given roles and a random password. */
  createUser(username: string, roles?: readonly string[]): Promise<TestUser>;
  /** Logs a fresh user with these roles in and returns the access token. */
  tokenFor(roles?: readonly string[]): Promise<string>;
  close(): Promise<void>;
}

/** Real argon2id with small parameters: the same code path, milliseconds instead of tens per hash. */
export function fastTestHasher(): Argon2Hasher {
  return new Argon2Hasher({ memoryCost: 1024, timeCost: 1, parallelism: 1, concurrency: 4, maxQueue: 1000 });
}

export async function startTestAuthServer(options: TestAuthServerOptions = {}): Promise<TestAuthServer> {
  const clock = options.clock ?? new ManualClock(Date.now());
  const config = loadConfig({ AUTH_LOG_LEVEL: 'silent', ...options.env });
  const hasher = fastTestHasher();
  const app = composeService(config, { clock, hasher, keys: createKeySet([generateEcKey()]), log: createLogger(config.logLevel) });
  const port = await app.listen('127.0.0.1:0');
  const address = `127.0.0.1:${port}`;
  const client = createAuthClient(address);
  let n = 0;
  const createUser = async (username: string, roles: readonly string[] = []): Promise<TestUser> => {
    const password = randomBytes(18).toString('base64url');
    const user = { id: newId({ bytes: randomBytes }, 'usr'), username, passwordHash: await hasher.hash(password), roles: [...roles], createdAt: clock.now() };
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
    createUser,
    async tokenFor(roles = []) {
      const user = await createUser(`test-user-${++n}-${randomBytes(4).toString('hex')}`, roles);
      return (await client.auth.login({ username: user.username, password: user.password })).accessToken;
    },
    async close() {
      client.close();
      await app.close(1000);
    },
  };
}

export { ManualClock };
