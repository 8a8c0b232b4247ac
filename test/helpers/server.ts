import { Metadata, type ServerOptions } from '@grpc/grpc-js';
import { AccountService } from '../../gen/auth/v1/account_pb';
import { AdminService } from '../../gen/auth/v1/admin_pb';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { SecureService } from '../../gen/auth/v1/secure_pb';
import type { Tracer } from '@opentelemetry/api';
import { ManualClock } from '../../src/clock';
import type { AuthServiceApp, RunningService } from '../../src/app';
import type { Env } from '../../src/config';
import type { KeySet } from '../../src/core/keys';
import type { PasswordHasher } from '../../src/core/password-hasher';
import { createClient, type Client } from '../../src/grpc/client';
import { routeGrpcJsLogs } from '../../src/grpc/grpc-js-logs';
import { fastTestHasher, startTestAuthServer } from '../../src/sdk/testing';
import type { Store } from '../../src/store/store';

/** Collects pino's JSON lines so tests can read (and search) every log line. */
export class LogCapture {
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
  get entries(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  get text(): string {
    return this.lines.join('');
  }
  /** The lines of one audit event. */
  events(name: string): Array<Record<string, unknown>> {
    return this.entries.filter((e) => e.event === name);
  }
}

export const fastHasher = fastTestHasher;

export const PASSWORD = 'correct horse battery staple';

export interface TestServer {
  readonly app: AuthServiceApp;
  readonly running: RunningService;
  readonly address: string;
  readonly clock: ManualClock;
  readonly logs: LogCapture;
  readonly auth: Client<typeof AuthService>;
  readonly secure: Client<typeof SecureService>;
  readonly account: Client<typeof AccountService>;
  readonly admin: Client<typeof AdminService>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  readonly env?: Env;
  readonly clock?: ManualClock;
  readonly store?: Store;
  readonly keys?: KeySet;
  readonly hasher?: PasswordHasher;
  readonly serverOptions?: ServerOptions;
  readonly tracer?: Tracer;
}

/**
 * The real service in-process on 127.0.0.1:0, started through the public test kit
 * (`grpc-auth-service/testing`), with every log line captured at debug level and real grpc-js
 * clients whose secrets are watched.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const logs = new LogCapture();
  const kit = await startTestAuthServer({
    clock: options.clock ?? new ManualClock(),
    env: { AUTH_LOG_LEVEL: 'debug', ...options.env },
    logDestination: logs,
    ...(options.store ? { store: options.store } : {}),
    ...(options.keys ? { keys: options.keys } : {}),
    ...(options.hasher ? { hasher: options.hasher } : {}),
    ...(options.serverOptions ? { serverOptions: options.serverOptions } : {}),
    ...(options.tracer ? { tracer: options.tracer } : {}),
  });
  // grpc-js has one process-wide logger: its diagnostics join this server's capture, scrubbed.
  routeGrpcJsLogs(kit.app.log);
  const canaries = new CanaryWatch();
  const auth = canaries.watch(createClient(AuthService, kit.address));
  const secure = canaries.watch(createClient(SecureService, kit.address));
  const account = canaries.watch(createClient(AccountService, kit.address));
  const admin = canaries.watch(createClient(AdminService, kit.address));
  return {
    app: kit.app,
    running: kit.running,
    address: kit.address,
    clock: kit.clock,
    logs,
    auth,
    secure,
    account,
    admin,
    async close() {
      for (const c of [auth, secure, account, admin]) c.close();
      await kit.close();
      // Every test is a canary test: no password or token it used may appear in a log line or in
      // an error message sent back (SECURITY.md, "Secrets").
      canaries.assertNoLeak(logs.text);
    },
  };
}

/**
 * Remembers every secret that crosses a test client (passwords, tokens and codes in requests;
 * tokens, TOTP secrets, recovery and reset codes in responses; bearer metadata) and every error
 * message the client received.
 */
export class CanaryWatch {
  private readonly secrets = new Set<string>();
  private readonly errors: string[] = [];

  private note(value: unknown): void {
    // Short values ("x", "") would match by chance; real secrets here are long.
    if (typeof value === 'string' && value.length >= 12) this.secrets.add(value);
    // Recovery codes come as a list.
    if (Array.isArray(value)) for (const v of value) this.note(v);
  }

  watch<C extends object>(client: C): C {
    return new Proxy(client, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function' || prop === 'close' || prop === 'grpcClient') return value;
        return (request: Record<string, unknown>, options?: { metadata?: Metadata }) => {
          for (const field of ['password', 'accessToken', 'refreshToken', 'currentPassword', 'newPassword', 'clientSecret', 'clientAssertion', 'mfaToken', 'code', 'mfaCode', 'responseJson', 'apiKey']) this.note(request?.[field]);
          this.noteWebAuthn(request?.responseJson);
          const authorization = options?.metadata?.get('authorization')[0];
          if (typeof authorization === 'string') this.note(authorization.replace(/^\S+\s+/, ''));
          const result = (value as (r: unknown, o: unknown) => unknown).call(target, request, options);
          if (!(result instanceof Promise)) return result;
          return (result as Promise<Record<string, unknown>>).then(
            (response) => {
              for (const field of ['accessToken', 'refreshToken', 'clientSecret', 'mfaToken', 'secret', 'otpauthUri', 'recoveryCodes', 'code', 'optionsJson']) this.note(response?.[field]);
              this.noteWebAuthn(response?.optionsJson);
              return response;
            },
            (err: { details?: string }) => {
              this.errors.push(String(err.details));
              throw err;
            },
          );
        };
      },
    });
  }

  /** A passkey ceremony's secrets-to-be: the challenge of its options, the signature and client data of its answer. */
  private noteWebAuthn(json: unknown): void {
    if (typeof json !== 'string' || json === '') return;
    try {
      const parsed = JSON.parse(json) as { challenge?: unknown; response?: { signature?: unknown; clientDataJSON?: unknown; attestationObject?: unknown; authenticatorData?: unknown } };
      for (const value of [parsed.challenge, parsed.response?.signature, parsed.response?.clientDataJSON, parsed.response?.attestationObject, parsed.response?.authenticatorData]) this.note(value);
    } catch {
      // Not JSON: the bad-input tests send such; the whole string is noted already.
    }
  }

  assertNoLeak(logText: string): void {
    for (const secret of this.secrets) {
      if (logText.includes(secret)) throw new Error(`a secret reached the log: ${secret.slice(0, 6)}…`);
      const message = this.errors.find((e) => e.includes(secret));
      if (message !== undefined) throw new Error(`a secret reached an error message: ${message.slice(0, 40)}…`);
    }
  }
}

export function bearer(token: string, scheme = 'Bearer'): { metadata: Metadata } {
  const metadata = new Metadata();
  metadata.set('authorization', `${scheme} ${token}`);
  return { metadata };
}

/** Registers a user and logs in; returns the tokens. */
export async function registerAndLogin(server: TestServer, username = 'alice', password = PASSWORD) {
  await server.auth.register({ username, password });
  return server.auth.login({ username, password });
}

/** Awaits a promise expected to reject with a gRPC status; returns code and details. */
export async function statusOf(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { code: number; details: string };
    return { code: e.code, details: e.details };
  }
  throw new Error('expected the call to fail');
}
