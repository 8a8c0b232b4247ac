import * as grpc from '@grpc/grpc-js';
import { AccountService } from '../../gen/auth/v1/account_pb.js';
import { AdminService } from '../../gen/auth/v1/admin_pb.js';
import { AuthService, type CompleteLoginResponse, type LoginResponse, type RefreshResponse } from '../../gen/auth/v1/auth_pb.js';
import { SecureService } from '../../gen/auth/v1/secure_pb.js';
import { randomBytes, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { systemClock, type Clock } from '../clock.js';
import { createClient, type CallOptions, type Client } from '../grpc/client.js';
import { AuthClientError } from '../grpc/client-error.js';
import { fromBinary } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { ErrorInfoSchema } from '../../gen/google/rpc/error_details_pb.js';
import { StatusSchema } from '../../gen/google/rpc/status_pb.js';
import { ERROR_DOMAIN } from '../errors.js';

/**
 * The client entry point (`grpc-auth-service/client`): a typed, promise-based client for every
 * RPC of AuthService, SecureService, AccountService and AdminService, a token session that keeps an access token fresh, and grpc-js
 * CallCredentials built on it.
 */

/** The one error type of every client of the package: the gRPC status code, the server's message, the trailers. */
export { AuthClientError };

/** How {@link createAuthClient} reaches the auth service. */
export interface AuthClientOptions {
  /** Channel credentials: TLS in production (grpc.credentials.createSsl); plaintext by default. */
  readonly credentials?: grpc.ChannelCredentials;
  /** grpc-js channel options (keepalive, message sizes, `grpc.ssl_target_name_override` ...), passed to every sub-client. */
  readonly channelOptions?: grpc.ClientOptions;
  /**
   * An API key ("gak_…", from AccountService.CreateApiKey): {@link AuthClient.apiKeySession} then
   * exchanges it for access tokens, again before each expires, one exchange at a time.
   */
  readonly apiKey?: string;
}

/**
 * A promise client for every RPC of `auth.v1.AuthService` (proto/auth/v1/auth.proto): `register`,
 * `login`, `completeLogin`, `refresh`, `validate`, `logout`, `getJwks`, `issueServiceToken`,
 * `requestPasswordReset`, `resetPassword`. Each takes the request as a plain object and
 * {@link CallOptions}, and rejects with {@link AuthClientError}.
 */
export type AuthServiceClient = Client<typeof AuthService>;
/** A promise client for every RPC of `auth.v1.SecureService` (proto/auth/v1/secure.proto): `whoAmI`, `adminPing`, `stepUpPing`. */
export type SecureServiceClient = Client<typeof SecureService>;
/** A promise client for every RPC of `auth.v1.AccountService` (proto/auth/v1/account.proto): the caller's own account. */
export type AccountServiceClient = Client<typeof AccountService>;
/** A promise client for every RPC of `auth.v1.AdminService` (proto/auth/v1/admin.proto): users and service accounts, for a token with the admin role. */
export type AdminServiceClient = Client<typeof AdminService>;

/** Options of one call of a typed client: metadata, deadline, per-call credentials, an AbortSignal. */
export type { CallOptions };

/**
 * What {@link createAuthClient} returns: a typed client per service of the auth service, and
 * sessions that keep an access token fresh. Close it when done.
 */
export interface AuthClient {
  /** Every AuthService RPC, typed from the descriptors. */
  readonly auth: AuthServiceClient;
  /** Every SecureService RPC (pass a bearer token in `metadata`, or use `session.callCredentials()`). */
  readonly secure: SecureServiceClient;
  /** Every AccountService RPC: the caller's own account (bearer token as for `secure`). */
  readonly account: AccountServiceClient;
  /** Every AdminService RPC (a token with the admin role). */
  readonly admin: AdminServiceClient;
  /**
   * Logs in and returns a session that keeps its access token fresh. For a user with a second
   * factor, `options.mfaCode` is asked for a TOTP (or recovery) code and the login completed with
   * it; without the callback such a login fails with `MfaRequiredError`. A wrong code is asked
   * for again, up to `options.mfaAttempts` (3) times.
   */
  login(username: string, password: string, options?: TokenSessionOptions & LoginOptions): Promise<TokenSession>;
  /**
   * A service account's session: gets a token with the account's credentials (a secret, a
   * private key for RFC 7523 assertions, or the channel's TLS client certificate) and gets a new
   * one ahead of expiry, like a login session refreshes.
   */
  serviceSession(credentials: ServiceCredentials, options?: TokenSessionOptions): Promise<TokenSession>;
  /**
   * The session of the client's `apiKey` option: its first token is asked for on the first call
   * (every caller then waits on that one exchange), and a new one before each expires (no refresh
   * token: the key is exchanged again). Throws when the client has no `apiKey`.
   */
  apiKeySession(options?: TokenSessionOptions): TokenSession;
  /** Closes the channels of every sub-client (sessions made from it stop renewing). */
  close(): void;
}

/**
 * A client of the auth service at `address` (`host:port`). One channel per service, all with the
 * same credentials; nothing connects until the first call.
 *
 * @example
 * ```ts
 * const auth = createAuthClient('auth.internal:50051', { credentials: grpc.credentials.createSsl(ca) });
 * const session = await auth.login('alice', password);
 * await orders.listOrders({}, { credentials: session.callCredentials() });
 * ```
 */
export function createAuthClient(address: string, options: AuthClientOptions = {}): AuthClient {
  const credentials = options.credentials ?? grpc.credentials.createInsecure();
  const auth = createClient(AuthService, address, credentials, options.channelOptions);
  const secure = createClient(SecureService, address, credentials, options.channelOptions);
  const account = createClient(AccountService, address, credentials, options.channelOptions);
  const admin = createClient(AdminService, address, credentials, options.channelOptions);
  let apiKeySessions: TokenSession | undefined;
  return {
    auth,
    secure,
    account,
    admin,
    async login(username, password, sessionOptions = {}) {
      const first = await auth.login({ username, password });
      if (!first.mfaRequired) return new TokenSession(auth, first, sessionOptions);
      const ask = sessionOptions.mfaCode;
      if (!ask) throw new MfaRequiredError();
      const attempts = sessionOptions.mfaAttempts ?? 3;
      for (let attempt = 1; ; attempt++) {
        const code = await ask({ attempt });
        try {
          return new TokenSession(auth, await auth.completeLogin({ mfaToken: first.mfaToken, code }), sessionOptions);
        } catch (err) {
          // A wrong code may be asked for again; anything else (throttled, expired token) ends here.
          const wrongCode = errorInfoOf(err)?.reason === 'MFA_CODE_INVALID';
          if (!wrongCode || attempt >= attempts) throw err;
        }
      }
    },
    async serviceSession(serviceCredentials, sessionOptions) {
      const issue = serviceTokenIssuer(auth, serviceCredentials);
      const session = TokenSession.renewing({ renew: issue }, { accessToken: '', expiresIn: 0 }, sessionOptions);
      await session.accessToken();
      return session;
    },
    apiKeySession(sessionOptions) {
      const apiKey = options.apiKey;
      if (apiKey === undefined) throw new Error('createAuthClient(address, { apiKey }) first: this client has no API key');
      apiKeySessions ??= TokenSession.renewing({ renew: (o) => auth.exchangeApiKey({ apiKey }, o) }, { accessToken: '', expiresIn: 0 }, sessionOptions);
      return apiKeySessions;
    },
    close() {
      for (const c of [auth, secure, account, admin]) c.close();
    },
  };
}

/** How {@link AuthClient.login} asks for a second factor. */
export interface LoginOptions {
  /** Asked for a second-factor code when the user has one (an authenticator app's 6 digits, or a recovery code). */
  readonly mfaCode?: (prompt: { readonly attempt: number }) => Promise<string> | string;
  /** Codes asked for at most. Default 3. */
  readonly mfaAttempts?: number;
}

/** Login needs a second factor and no `mfaCode` callback was given. */
export class MfaRequiredError extends Error {
  /** Always `'MfaRequiredError'`. */
  override readonly name = 'MfaRequiredError';
  constructor() {
    super('this user signs in with a second factor: pass login(..., { mfaCode }) to ask for the code');
  }
}

/**
 * What a step-up refusal asks for (the ErrorInfo of an `insufficient_authentication` error), or
 * undefined for any other error: `MFA_REQUIRED` (sign in with a second factor) or
 * `REAUTHENTICATION_REQUIRED` (sign in again, within `maxAgeSeconds`).
 */
export function stepUpRequired(err: unknown): StepUp | undefined {
  const info = errorInfoOf(err);
  if (info?.reason !== 'MFA_REQUIRED' && info?.reason !== 'REAUTHENTICATION_REQUIRED') return undefined;
  const maxAge = info.metadata.max_age_seconds;
  return { reason: info.reason, maxAgeSeconds: maxAge === undefined ? undefined : Number(maxAge) };
}

/** What a method's step-up policy asked for, read from a refusal by {@link stepUpRequired}. */
export interface StepUp {
  /** `MFA_REQUIRED`: sign in with a second factor. `REAUTHENTICATION_REQUIRED`: sign in again. */
  readonly reason: 'MFA_REQUIRED' | 'REAUTHENTICATION_REQUIRED';
  /** For `REAUTHENTICATION_REQUIRED`: the sign-in must be at most this old. */
  readonly maxAgeSeconds: number | undefined;
}

/** The ErrorInfo (domain auth.v1) of a failed call's google.rpc.Status trailer, if it has one. */
function errorInfoOf(err: unknown): { readonly reason: string; readonly metadata: Readonly<Record<string, string>> } | undefined {
  const metadata = (err as { metadata?: unknown } | undefined)?.metadata;
  if (!(metadata instanceof grpc.Metadata)) return undefined;
  const raw = metadata.get('grpc-status-details-bin')[0];
  if (!Buffer.isBuffer(raw)) return undefined;
  try {
    for (const any of fromBinary(StatusSchema, raw).details) {
      const info = anyUnpack(any, ErrorInfoSchema);
      if (info?.domain === ERROR_DOMAIN) return info;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** How a {@link TokenSession} renews its access token and tells you it ended. */
export interface TokenSessionOptions {
  /** Refresh this long before the access token expires. Default 30 s. */
  readonly refreshMarginMs?: number;
  /** Attempts for one refresh when the server is UNAVAILABLE or slow. Default 4. */
  readonly maxAttempts?: number;
  /** First retry delay (ms), doubled each time, with full jitter. Default 100. */
  readonly backoffMs?: number;
  /** Deadline of one Refresh call. Default 5 s. */
  readonly callTimeoutMs?: number;
  /** The clock expiry is reckoned on (the test kit's ManualClock in tests). Default: the system clock. */
  readonly clock?: Clock;
  /** Called once when the session ends (logout, or the server refused the refresh token). */
  readonly onEnded?: (reason: AuthClientError | 'logout') => void;
}

/** Thrown by `accessToken()` once the session has ended; log in again. */
export class SessionEndedError extends Error {
  /** Always `'SessionEndedError'`. */
  override readonly name = 'SessionEndedError';
}

/** How a service account authenticates to IssueServiceToken. */
export type ServiceCredentials = SecretCredentials | KeyCredentials | CertificateCredentials;

/** A client secret (`svs_…`) from CreateServiceAccount or AddServiceAccountSecret. */
export interface SecretCredentials {
  /** The service account's id (`sva_…`). */
  readonly clientId: string;
  /** The secret, shown once when it was made. */
  readonly clientSecret: string;
}

/** A private key registered with AddServiceAccountKey: the session signs a fresh assertion (RFC 7523) for every token. */
export interface KeyCredentials {
  /** The service account's id (`sva_…`). */
  readonly clientId: string;
  /** The P-256 private key (a KeyObject, or PEM). */
  readonly privateKey: KeyObject | string;
  /** The key's kid as registered (the JWK's own, or its RFC 7638 thumbprint); omitted from the header when not given. */
  readonly kid?: string;
  /** The auth service's issuer (`AUTH_ISSUER`): the assertions' audience. */
  readonly issuer: string;
}

/** The TLS client certificate of the channel (createAuthClient's `credentials`), bound with BindServiceAccountCertificate. */
export interface CertificateCredentials {
  /** The service account's id (`sva_…`). */
  readonly clientId: string;
  /** Always `true`: the call's own mTLS certificate authenticates. */
  readonly certificate: true;
}

/** The IssueServiceToken call of a set of credentials. */
function serviceTokenIssuer(auth: Pick<Client<typeof AuthService>, 'issueServiceToken'>, c: ServiceCredentials): Renewal['renew'] {
  return (callOptions) => {
    if ('clientSecret' in c) return auth.issueServiceToken({ clientId: c.clientId, clientSecret: c.clientSecret }, callOptions);
    if ('privateKey' in c) {
      // RFC 7523 section 3: iss = sub = client id, aud = the auth server's issuer, short-lived, a fresh jti.
      const assertion = jwt.sign({ jti: randomBytes(16).toString('base64url') }, c.privateKey, {
        algorithm: 'ES256',
        issuer: c.clientId,
        subject: c.clientId,
        audience: c.issuer,
        expiresIn: 60,
        ...(c.kid ? { keyid: c.kid } : {}),
      });
      return auth.issueServiceToken({ clientId: c.clientId, clientAssertion: assertion }, callOptions);
    }
    return auth.issueServiceToken({ clientId: c.clientId }, callOptions);
  };
}

/** How a session gets its next access token: Refresh for a login, IssueServiceToken for a service account. */
export interface Renewal {
  /** Gets the next access token (and, for a login, the next refresh token) within `deadline` (epoch ms). */
  renew(options: { deadline: number }): Promise<RenewedTokens>;
  /** Ends the session on the server (Logout), when there is one. */
  end?(): Promise<void>;
}

const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);
/** What a {@link Renewal} answers. */
export interface RenewedTokens {
  /** The new access token. */
  readonly accessToken: string;
  /** Its lifetime in seconds, from now on the session's clock. */
  readonly expiresIn: number;
  /** The next refresh token, for sessions that have one. */
  readonly refreshToken?: string;
}

/** What ends a session: the server refused the credentials or the account. */
const TERMINAL = new Set([grpc.status.UNAUTHENTICATED, grpc.status.FAILED_PRECONDITION, grpc.status.PERMISSION_DENIED]);

/**
 * Holds a session's access token and renews it ahead of expiry. Renewal is single-flight: every
 * caller waiting at once shares one call, so a busy client never trips the server's re-use
 * detection by itself. Expiry is reckoned from `expires_in` on the client's own clock, so clock
 * skew between client and server does not matter. Transient failures retry with back-off and
 * jitter (a retried Refresh gets the same successor within the server's reuse interval); when the
 * server refuses the credentials (UNAUTHENTICATED, FAILED_PRECONDITION) the session ends and
 * `onEnded` is called: it never exits the process.
 */
export class TokenSession {
  private access: string;
  private expiresAt: number;
  private inFlight: Promise<string> | undefined;
  private ended: AuthClientError | 'logout' | undefined;
  private readonly clock: Clock;
  private readonly renewal: Renewal;

  /** A login session: renewed with Refresh, ended with Logout. */
  constructor(auth: Pick<Client<typeof AuthService>, 'refresh' | 'logout'>, tokens: LoginResponse | RefreshResponse | CompleteLoginResponse, options?: TokenSessionOptions);
  constructor(renewal: Renewal, tokens: { accessToken: string; expiresIn: number }, options?: TokenSessionOptions, _renewing?: true);
  constructor(
    source: Pick<Client<typeof AuthService>, 'refresh' | 'logout'> | Renewal,
    tokens: { accessToken: string; expiresIn: number; refreshToken?: string },
    private readonly options: TokenSessionOptions = {},
    renewing?: true,
  ) {
    this.clock = options.clock ?? systemClock;
    this.access = tokens.accessToken;
    this.expiresAt = this.clock.now() + tokens.expiresIn * 1000;
    if (renewing) {
      this.renewal = source as Renewal;
    } else {
      const auth = source as Pick<Client<typeof AuthService>, 'refresh' | 'logout'>;
      let refreshToken = tokens.refreshToken!;
      this.renewal = {
        renew: async (o) => {
          const next = await auth.refresh({ refreshToken }, o);
          refreshToken = next.refreshToken;
          return next;
        },
        end: async () => {
          await auth.logout({ refreshToken });
        },
      };
    }
  }

  /** A session renewed by `renewal` (a service account's, or your own kind). */
  static renewing(renewal: Renewal, tokens: { accessToken: string; expiresIn: number }, options?: TokenSessionOptions): TokenSession {
    return new TokenSession(renewal, tokens, options, true);
  }

  /** A valid access token, renewed first when it is within the margin of expiry. */
  async accessToken(): Promise<string> {
    if (this.ended) throw new SessionEndedError(this.ended === 'logout' ? 'logged out' : `session ended: ${this.ended.message}`);
    if (this.clock.now() < this.expiresAt - (this.options.refreshMarginMs ?? 30_000)) return this.access;
    this.inFlight ??= this.renewWithRetries().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** True once the session has ended (logged out, or refused by the server): `accessToken()` then throws SessionEndedError. */
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

  /** Ends the session (on the server too, for a login: Logout). Idempotent. */
  async logout(): Promise<void> {
    if (this.ended) return;
    await this.renewal.end?.();
    this.end('logout');
  }

  private end(reason: AuthClientError | 'logout'): void {
    if (this.ended) return;
    this.ended = reason;
    this.options.onEnded?.(reason);
  }

  private async renewWithRetries(): Promise<string> {
    const attempts = this.options.maxAttempts ?? 4;
    const base = this.options.backoffMs ?? 100;
    for (let attempt = 1; ; attempt++) {
      try {
        const tokens = await this.renewal.renew({ deadline: this.options.callTimeoutMs ?? 5000 });
        this.access = tokens.accessToken;
        this.expiresAt = this.clock.now() + tokens.expiresIn * 1000;
        return this.access;
      } catch (err) {
        const e = AuthClientError.from(err);
        if (RETRYABLE.has(e.code) && attempt < attempts) {
          await new Promise<void>((r) => this.clock.setTimer(Math.random() * base * 2 ** (attempt - 1), r));
          continue;
        }
        if (TERMINAL.has(e.code)) this.end(e);
        throw e;
      }
    }
  }
}
