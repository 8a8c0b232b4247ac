/**
 * Configuration: every setting comes from one environment variable, is validated once at start-up,
 * and a bad value is refused with an error that names the variable. The README's configuration
 * table lists the same variables and defaults (a test keeps the two in step).
 */
export type JwtAlgorithm = 'ES256' | 'HS256';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  readonly production: boolean;
  readonly address: string;
  readonly issuer: string;
  readonly audience: string;
  /** Seconds. */
  readonly accessTtl: number;
  readonly refreshTtl: number;
  readonly sessionMaxAge: number;
  readonly refreshReuseInterval: number;
  readonly clockSkew: number;
  readonly jwtAlg: JwtAlgorithm;
  readonly signingKeyFile: string | undefined;
  readonly jwtSecret: Buffer | undefined;
  readonly registration: 'open' | 'closed';
  readonly usersFile: string | undefined;
  readonly passwordMinLength: number;
  readonly passwordDenylistFile: string | undefined;
  readonly logLevel: LogLevel;
  /** Seconds: the most any call's work may take, whatever the client's deadline. */
  readonly callTimeout: number;
  /** Seconds: how long shutdown waits for in-flight calls before closing them. */
  readonly shutdownGrace: number;
  /** Password hashes computed at once; further logins queue. */
  readonly hashConcurrency: number;
  readonly store: 'memory' | 'redis';
  readonly redisUrl: string | undefined;
  readonly redisKeyPrefix: string;
  /** Milliseconds one Redis command may take before the call fails with UNAVAILABLE. */
  readonly redisCommandTimeoutMs: number;
  /** Seconds any one store operation may take before the call fails with UNAVAILABLE. */
  readonly storeTimeout: number;
  /** host:port of the Prometheus endpoint; off when undefined. */
  readonly metricsAddress: string | undefined;
  /** PEM files; TLS is on when cert and key are set, mutual when clientCa is too. */
  readonly tls: { readonly cert: string; readonly key: string; readonly clientCa: string | undefined } | undefined;
  /** Plaintext in production, because TLS ends in front of the service. */
  readonly allowInsecure: boolean;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** One row per variable and its default, as the README's configuration table documents it. */
export const configVariables = {
  NODE_ENV: { default: 'development' },
  AUTH_ADDRESS: { default: '127.0.0.1:50051' },
  AUTH_ISSUER: { default: 'urn:grpc-auth:dev (required in production)' },
  AUTH_AUDIENCE: { default: 'urn:grpc-auth:services (required in production)' },
  AUTH_ACCESS_TTL: { default: '900s' },
  AUTH_REFRESH_TTL: { default: '14d' },
  AUTH_SESSION_MAX_AGE: { default: '30d' },
  AUTH_REFRESH_REUSE_INTERVAL: { default: '10s' },
  AUTH_CLOCK_SKEW: { default: '30s' },
  AUTH_JWT_ALG: { default: 'ES256' },
  AUTH_SIGNING_KEY_FILE: { default: '(none: ephemeral key in development)' },
  AUTH_JWT_SECRET: { default: '(none)' },
  AUTH_REGISTRATION: { default: 'open' },
  AUTH_USERS_FILE: { default: '(none)' },
  AUTH_PASSWORD_MIN_LENGTH: { default: '15' },
  AUTH_PASSWORD_DENYLIST_FILE: { default: '(none: a small built-in list)' },
  AUTH_LOG_LEVEL: { default: 'info' },
  AUTH_CALL_TIMEOUT: { default: '10s' },
  AUTH_SHUTDOWN_GRACE: { default: '10s' },
  AUTH_HASH_CONCURRENCY: { default: '2' },
  AUTH_STORE: { default: 'memory' },
  AUTH_REDIS_URL: { default: '(none; required with AUTH_STORE=redis)' },
  AUTH_REDIS_KEY_PREFIX: { default: 'auth:' },
  AUTH_REDIS_COMMAND_TIMEOUT_MS: { default: '500' },
  AUTH_STORE_TIMEOUT: { default: '2s' },
  AUTH_METRICS_ADDRESS: { default: '(off)' },
  AUTH_TLS_CERT: { default: '(none: plaintext)' },
  AUTH_TLS_KEY: { default: '(none)' },
  AUTH_TLS_CLIENT_CA: { default: '(none: no client certificates)' },
  AUTH_ALLOW_INSECURE: { default: 'false' },
} as const;

export type ConfigVariable = keyof typeof configVariables;
export type Env = Partial<Record<string, string | undefined>>;

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses "900", "900s", "15m", "12h" or "30d" into whole seconds. */
export function parseDuration(name: string, raw: string): number {
  const match = /^(\d{1,9})([smhd]?)$/.exec(raw.trim());
  if (!match) {
    throw new ConfigError(`${name} must be a duration such as 900, 900s, 15m, 12h or 30d (got "${raw}")`);
  }
  return Number(match[1]) * units[match[2] || 's']!;
}

function read(env: Env, name: ConfigVariable): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function duration(env: Env, name: ConfigVariable, fallback: string, min: number, max: number): number {
  const seconds = parseDuration(name, read(env, name) ?? fallback);
  if (seconds < min || seconds > max) {
    throw new ConfigError(`${name} must be between ${min}s and ${max}s (got ${seconds}s)`);
  }
  return seconds;
}

function integer(env: Env, name: ConfigVariable, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
  }
  return Number(raw);
}

function oneOf<T extends string>(env: Env, name: ConfigVariable, allowed: readonly T[], fallback: T): T {
  const raw = read(env, name) ?? fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')} (got "${raw}")`);
  }
  return raw as T;
}

const DAY = 86400;

function hostPort(env: Env, name: ConfigVariable): string | undefined {
  const value = read(env, name);
  if (value === undefined) return undefined;
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(value) || Number(value.split(':').pop()) > 65535) {
    throw new ConfigError(`${name} must be host:port, for example 127.0.0.1:50051 (got "${value}")`);
  }
  return value;
}

/** Reads and validates the whole configuration; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === 'production';

  const address = hostPort(env, 'AUTH_ADDRESS') ?? '127.0.0.1:50051';

  const issuer = read(env, 'AUTH_ISSUER');
  const audience = read(env, 'AUTH_AUDIENCE');
  if (production && issuer === undefined) throw new ConfigError('AUTH_ISSUER is required when NODE_ENV=production');
  if (production && audience === undefined) throw new ConfigError('AUTH_AUDIENCE is required when NODE_ENV=production');

  const accessTtl = duration(env, 'AUTH_ACCESS_TTL', '900', 10, DAY);
  const refreshTtl = duration(env, 'AUTH_REFRESH_TTL', '14d', 60, 365 * DAY);
  const sessionMaxAge = duration(env, 'AUTH_SESSION_MAX_AGE', '30d', 60, 365 * DAY);
  if (refreshTtl < accessTtl) throw new ConfigError('AUTH_REFRESH_TTL must not be shorter than AUTH_ACCESS_TTL');
  if (sessionMaxAge < refreshTtl) throw new ConfigError('AUTH_SESSION_MAX_AGE must not be shorter than AUTH_REFRESH_TTL');
  const refreshReuseInterval = duration(env, 'AUTH_REFRESH_REUSE_INTERVAL', '10', 0, 300);
  const clockSkew = duration(env, 'AUTH_CLOCK_SKEW', '30', 0, 300);

  const jwtAlg = oneOf(env, 'AUTH_JWT_ALG', ['ES256', 'HS256'] as const, 'ES256');
  const signingKeyFile = read(env, 'AUTH_SIGNING_KEY_FILE');
  const rawSecret = env.AUTH_JWT_SECRET;
  let jwtSecret: Buffer | undefined;
  if (jwtAlg === 'HS256') {
    if (signingKeyFile !== undefined) throw new ConfigError('AUTH_SIGNING_KEY_FILE is for ES256; with AUTH_JWT_ALG=HS256 set AUTH_JWT_SECRET');
    if (!rawSecret) throw new ConfigError('AUTH_JWT_SECRET is required when AUTH_JWT_ALG=HS256');
    jwtSecret = Buffer.from(rawSecret, 'utf8');
    if (jwtSecret.length < 32) throw new ConfigError('AUTH_JWT_SECRET must be at least 32 bytes (RFC 7518 section 3.2)');
  } else {
    if (rawSecret) throw new ConfigError('AUTH_JWT_SECRET is only for AUTH_JWT_ALG=HS256; ES256 reads AUTH_SIGNING_KEY_FILE');
    if (production && signingKeyFile === undefined) {
      throw new ConfigError('AUTH_SIGNING_KEY_FILE is required when NODE_ENV=production (an ephemeral key would log everyone out on restart)');
    }
  }

  const store = oneOf(env, 'AUTH_STORE', ['memory', 'redis'] as const, 'memory');
  const redisUrl = read(env, 'AUTH_REDIS_URL');
  if (store === 'redis' && redisUrl === undefined) throw new ConfigError('AUTH_REDIS_URL is required when AUTH_STORE=redis');
  if (redisUrl !== undefined && !/^rediss?:\/\/./.test(redisUrl)) {
    throw new ConfigError('AUTH_REDIS_URL must start with redis:// or rediss://');
  }
  const redisKeyPrefix = read(env, 'AUTH_REDIS_KEY_PREFIX') ?? 'auth:';
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(redisKeyPrefix)) {
    throw new ConfigError('AUTH_REDIS_KEY_PREFIX must be 1 to 64 of letters, digits and : _ . -');
  }

  const tlsCert = read(env, 'AUTH_TLS_CERT');
  const tlsKey = read(env, 'AUTH_TLS_KEY');
  const tlsClientCa = read(env, 'AUTH_TLS_CLIENT_CA');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError('AUTH_TLS_CERT and AUTH_TLS_KEY go together: set both or neither');
  if (tlsClientCa !== undefined && tlsCert === undefined) throw new ConfigError('AUTH_TLS_CLIENT_CA needs AUTH_TLS_CERT and AUTH_TLS_KEY');
  const allowInsecure = oneOf(env, 'AUTH_ALLOW_INSECURE', ['true', 'false'] as const, 'false') === 'true';
  if (production && tlsCert === undefined && !allowInsecure) {
    throw new ConfigError(
      'NODE_ENV=production needs AUTH_TLS_CERT and AUTH_TLS_KEY (passwords and tokens must not cross a network in clear), or AUTH_ALLOW_INSECURE=true when TLS ends in front of the service',
    );
  }

  return Object.freeze({
    production,
    address,
    issuer: issuer ?? 'urn:grpc-auth:dev',
    audience: audience ?? 'urn:grpc-auth:services',
    accessTtl,
    refreshTtl,
    sessionMaxAge,
    refreshReuseInterval,
    clockSkew,
    jwtAlg,
    signingKeyFile,
    jwtSecret,
    registration: oneOf(env, 'AUTH_REGISTRATION', ['open', 'closed'] as const, 'open'),
    usersFile: read(env, 'AUTH_USERS_FILE'),
    passwordMinLength: integer(env, 'AUTH_PASSWORD_MIN_LENGTH', 15, 8, 64),
    passwordDenylistFile: read(env, 'AUTH_PASSWORD_DENYLIST_FILE'),
    logLevel: oneOf(env, 'AUTH_LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    callTimeout: duration(env, 'AUTH_CALL_TIMEOUT', '10', 1, 300),
    shutdownGrace: duration(env, 'AUTH_SHUTDOWN_GRACE', '10', 0, 600),
    hashConcurrency: integer(env, 'AUTH_HASH_CONCURRENCY', 2, 1, 64),
    store,
    redisUrl,
    redisKeyPrefix,
    redisCommandTimeoutMs: integer(env, 'AUTH_REDIS_COMMAND_TIMEOUT_MS', 500, 10, 60_000),
    storeTimeout: duration(env, 'AUTH_STORE_TIMEOUT', '2', 1, 60),
    metricsAddress: hostPort(env, 'AUTH_METRICS_ADDRESS'),
    tls: tlsCert === undefined ? undefined : Object.freeze({ cert: tlsCert, key: tlsKey!, clientCa: tlsClientCa }),
    allowInsecure,
  });
}
