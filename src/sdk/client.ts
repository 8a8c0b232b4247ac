import * as grpc from '@grpc/grpc-js';
import { AccountService, AdminService } from '../../gen/auth/v1/accounts_pb.js';
import { AuthService, SecureService, type LoginResponse, type RefreshResponse } from '../../gen/auth/v1/auth_pb.js';
import { systemClock, type Clock } from '../clock.js';
import { createClient, type Client } from '../grpc/client.js';

/**
 * The client entry point (`grpc-auth-service/client`): a typed, promise-based client for every
 * RPC of AuthService, SecureService, AccountService and AdminService, a token session that keeps an access token fresh, and grpc-js
 * CallCredentials built on it.
 */

/** The one error type of the client: the gRPC status code and the server's message. */
export class AuthClientError extends Error {
  override readonly name = 'AuthClientError';
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    options?: { cause?: unknown },
  ) {
    super(`${grpc.status[code] ?? code}: ${details}`, options);
  }
}

/** A promise client whose failures are AuthClientError. */
type Typed<C> = { [K in keyof C]: C[K] };

function withClientErrors<C extends object>(client: C): Typed<C> {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'close') return value;
      return (...args: unknown[]) =>
        (value as (...a: unknown[]) => Promise<unknown>).apply(target, args).catch((err: { code?: number; details?: string }) => {
          throw new AuthClientError(err.code ?? grpc.status.UNKNOWN, err.details ?? String(err), { cause: err });
        });
    },
  });
}

export interface AuthClientOptions {
  /** Channel credentials: TLS in production (grpc.credentials.createSsl); plaintext by default. */
  readonly credentials?: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ClientOptions;
}

export interface AuthClient {
  /** Every AuthService RPC, typed from the descriptors. */
  readonly auth: Client<typeof AuthService>;
  /** Every SecureService RPC (pass a bearer token in `metadata`, or use `session.callCredentials()`). */
  readonly secure: Client<typeof SecureService>;
  /** Every AccountService RPC: the caller's own account (bearer token as for `secure`). */
  readonly account: Client<typeof AccountService>;
  /** Every AdminService RPC (a token with the admin role). */
  readonly admin: Client<typeof AdminService>;
  /** Logs in and returns a session that keeps its access token fresh. */
  login(username: string, password: string, options?: TokenSessionOptions): Promise<TokenSession>;
  close(): void;
}

export function createAuthClient(address: string, options: AuthClientOptions = {}): AuthClient {
  const credentials = options.credentials ?? grpc.credentials.createInsecure();
  const auth = withClientErrors(createClient(AuthService, address, credentials, options.channelOptions));
  const secure = withClientErrors(createClient(SecureService, address, credentials, options.channelOptions));
  const account = withClientErrors(createClient(AccountService, address, credentials, options.channelOptions));
  const admin = withClientErrors(createClient(AdminService, address, credentials, options.channelOptions));
  return {
    auth,
    secure,
    account,
    admin,
    async login(username, password, sessionOptions) {
      return new TokenSession(auth, await auth.login({ username, password }), sessionOptions);
    },
    close() {
      for (const c of [auth, secure, account, admin]) c.close();
    },
  };
}

export interface TokenSessionOptions {
  /** Refresh this long before the access token expires. Default 30 s. */
  readonly refreshMarginMs?: number;
  /** Attempts for one refresh when the server is UNAVAILABLE or slow. Default 4. */
  readonly maxAttempts?: number;
  /** First retry delay (ms), doubled each time, with full jitter. Default 100. */
  readonly backoffMs?: number;
  /** Deadline of one Refresh call. Default 5 s. */
  readonly callTimeoutMs?: number;
  readonly clock?: Clock;
  /** Called once when the session ends (logout, or the server refused the refresh token). */
  readonly onEnded?: (reason: AuthClientError | 'logout') => void;
}

/** Thrown by `accessToken()` once the session has ended; log in again. */
export class SessionEndedError extends Error {
  override readonly name = 'SessionEndedError';
}

const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

/**
 * Holds a session's tokens and refreshes ahead of expiry. Refresh is single-flight: every caller
 * waiting at once shares one Refresh call, so a busy client never trips the server's re-use
 * detection by itself. Expiry is reckoned from `expires_in` on the client's own clock, so clock
 * skew between client and server does not matter. Transient failures retry with back-off and
 * jitter (a retried Refresh gets the same successor within the server's reuse interval);
 * UNAUTHENTICATED ends the session.
 */
export class TokenSession {
  private access: string;
  private refresh: string;
  private expiresAt: number;
  private inFlight: Promise<string> | undefined;
  private ended: AuthClientError | 'logout' | undefined;
  private readonly clock: Clock;

  constructor(
    private readonly auth: Pick<Client<typeof AuthService>, 'refresh' | 'logout'>,
    tokens: LoginResponse | RefreshResponse,
    private readonly options: TokenSessionOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.access = tokens.accessToken;
    this.refresh = tokens.refreshToken;
    this.expiresAt = this.clock.now() + tokens.expiresIn * 1000;
  }

  /** A valid access token, refreshed first when it is within the margin of expiry. */
  async accessToken(): Promise<string> {
    if (this.ended) throw new SessionEndedError(this.ended === 'logout' ? 'logged out' : `session ended: ${this.ended.message}`);
    if (this.clock.now() < this.expiresAt - (this.options.refreshMarginMs ?? 30_000)) return this.access;
    this.inFlight ??= this.refreshWithRetries().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  get isEnded(): boolean {
    return this.ended !== undefined;
  }

  /** grpc-js CallCredentials that put a fresh `authorization: Bearer …` on every call. */
  callCredentials(): grpc.CallCredentials {
    return grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      this.accessToken().then(
        (token) => {
          const metadata = new grpc.Metadata();
          metadata.set('authorization', `Bearer ${token}`);
          callback(null, metadata);
        },
        (err: Error) => callback(Object.assign(err, { code: grpc.status.UNAUTHENTICATED })),
      );
    });
  }

  /** Ends the session on the server (idempotent). */
  async logout(): Promise<void> {
    if (this.ended) return;
    await this.auth.logout({ refreshToken: this.refresh });
    this.end('logout');
  }

  private end(reason: AuthClientError | 'logout'): void {
    if (this.ended) return;
    this.ended = reason;
    this.options.onEnded?.(reason);
  }

  private async refreshWithRetries(): Promise<string> {
    const attempts = this.options.maxAttempts ?? 4;
    const base = this.options.backoffMs ?? 100;
    for (let attempt = 1; ; attempt++) {
      try {
        const tokens = await this.auth.refresh({ refreshToken: this.refresh }, { deadline: this.options.callTimeoutMs ?? 5000 });
        this.access = tokens.accessToken;
        this.refresh = tokens.refreshToken;
        this.expiresAt = this.clock.now() + tokens.expiresIn * 1000;
        return this.access;
      } catch (err) {
        const e = err instanceof AuthClientError ? err : new AuthClientError(grpc.status.UNKNOWN, String(err));
        if (RETRYABLE.has(e.code) && attempt < attempts) {
          await new Promise<void>((r) => this.clock.setTimer(Math.random() * base * 2 ** (attempt - 1), r));
          continue;
        }
        if (e.code === grpc.status.UNAUTHENTICATED) this.end(e);
        throw e;
      }
    }
  }
}
