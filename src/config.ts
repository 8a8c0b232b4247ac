import { parseDatabaseUrl } from './database-url.js';
import proxyAddr from 'proxy-addr';
import { choice, count, duration, flag, HOST_PORT, isHostPort, list, SettingError, text, textWithDefault, type Setting } from './settings.js';

/**
 * Configuration: every setting comes from one environment variable, is validated once at start-up,
 * and every bad value is reported at once, each with the variable's name. The settings table
 * below is the one source of the typed configuration, of `check-config` and of the table in docs/configuration.md.
 */
export type JwtAlgorithm = 'ES256' | 'HS256';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

const DEV_ISSUER = 'urn:grpc-auth:dev';

function isRedisUrl(value: string): boolean {
  if (value.includes(',')) return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' && (url.pathname === '' || /^\/\d{0,2}$/.test(url.pathname));
  } catch {
    return false;
  }
}
/** Why a string is not an origin (scheme, host and port only), or undefined when it is one. */
function originProblem(value: string): string | undefined {
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'http:// or https://';
    if (url.origin !== value) return `${value} is not an origin: write it as ${url.origin}`;
    return undefined;
  } catch {
    return 'scheme://host[:port]';
  }
}

/** Why a PostgreSQL URL cannot be used (the host list, a port, an option), or undefined when it can. */
function postgresUrlProblem(value: string): string | undefined {
  try {
    parseDatabaseUrl(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
function isTrustedProxy(value: string): boolean {
  try {
    proxyAddr.compile(value);
    return true;
  } catch {
    return false;
  }
}
const DEV_AUDIENCE = 'urn:grpc-auth:services';
/** An http(s) URL without user info: fetch refuses `user:password@` in a URL, so every delivery would fail. */
function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}
function isWebhookSecret(value: string): boolean {
  return /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(value) && Buffer.from(value.slice(6), 'base64').length >= 24;
}

/** The settings, in the order docs/configuration.md lists them. */
export const settings = {
  address: textWithDefault('AUTH_ADDRESS', {
    default: '127.0.0.1:50051',
    doc: '`host:port` to listen on (`[::1]:50051` for IPv6; port 0 picks a free port)',
    pattern: HOST_PORT,
  }),
  issuer: text('AUTH_ISSUER', { shown: `${DEV_ISSUER} (required in production)`, doc: '`iss` of access tokens; verification requires it' }),
  audience: text('AUTH_AUDIENCE', { shown: `${DEV_AUDIENCE} (required in production)`, doc: '`aud` of access tokens; verification requires it' }),
  accessTtlMs: duration('AUTH_ACCESS_TTL', { default: '900s', min: '10s', max: '1d', doc: 'Access-token lifetime' }),
  refreshTtlMs: duration('AUTH_REFRESH_TTL', { default: '14d', min: '60s', max: '365d', doc: 'Idle lifetime of a refresh token; each rotation starts it again' }),
  sessionMaxAgeMs: duration('AUTH_SESSION_MAX_AGE', { default: '30d', min: '60s', max: '365d', doc: 'Absolute session lifetime: no token of a session outlives it' }),
  refreshReuseIntervalMs: duration('AUTH_REFRESH_REUSE_INTERVAL', {
    default: '10s',
    min: '0s',
    max: '300s',
    doc: 'A retry of the just-rotated refresh token within this gets the same successor',
  }),
  clockSkewMs: duration('AUTH_CLOCK_SKEW', { default: '30s', min: '0s', max: '300s', doc: 'Leeway on `exp`, `nbf` and `iat` when verifying' }),
  maxSessionsPerUser: count('AUTH_MAX_SESSIONS_PER_USER', { default: 100, min: 1, max: 10_000, doc: "Active sessions one user may hold; a login past it ends the user's oldest session" }),
  jwtAlg: choice('AUTH_JWT_ALG', ['ES256', 'HS256'], { default: 'ES256', doc: '`ES256` (P-256 key file) or `HS256` (shared secret; GetJwks is then empty)' }),
  signingKeyFiles: list('AUTH_SIGNING_KEY_FILE', {
    shown: '(none: ephemeral key in development)',
    doc: 'PEM P-256 private key(s), comma-separated: the first signs, all verify',
  }),
  jwtSecret: text('AUTH_JWT_SECRET', { shown: '(none)', secret: true, doc: 'HS256 secret, at least 32 bytes' }),
  registration: choice('AUTH_REGISTRATION', ['open', 'closed'], { default: 'open', doc: '`closed` makes Register fail with FAILED_PRECONDITION' }),
  registerPerAddressPerHour: count('AUTH_REGISTER_PER_ADDRESS', { default: 20, min: 1, max: 1_000_000, doc: 'Registrations one client address may make an hour (then RESOURCE_EXHAUSTED)' }),
  registerPerMinute: count('AUTH_REGISTER_PER_MINUTE', { default: 120, min: 1, max: 1_000_000, doc: 'Registrations all clients together may make a minute: the ceiling a flood from many addresses meets' }),
  usersFile: text('AUTH_USERS_FILE', { shown: '(none)', doc: 'Users loaded at start: `username:argon2id-hash:role,role` per line' }),
  passwordMinLength: count('AUTH_PASSWORD_MIN_LENGTH', { default: 15, min: 8, max: 64, doc: 'Minimum password length in code points after NFKC; the maximum is 128' }),
  passwordDenylistFile: text('AUTH_PASSWORD_DENYLIST_FILE', { shown: '(none: a small built-in list)', doc: 'More passwords to refuse at Register, one a line (e.g. a breach corpus)' }),
  totpIssuer: textWithDefault('AUTH_TOTP_ISSUER', {
    default: 'grpc-auth',
    doc: 'The issuer authenticator apps show beside the username (the `otpauth://` URI of EnrollTotp)',
    pattern: { test: (v) => v.length <= 64 && !/[:%]/.test(v), says: 'at most 64 characters, without : or %' },
  }),
  apiKeySecret: text('AUTH_API_KEY_SECRET', {
    shown: '(none: a random one per process outside production; API keys off in production)',
    secret: true,
    doc: 'The HMAC key API keys are stored under, at least 32 bytes, the same on every instance (changing it ends every API key)',
    pattern: { test: (v) => Buffer.byteLength(v) >= 32, says: 'at least 32 bytes' },
  }),
  apiKeyMaxTtlMs: duration('AUTH_API_KEY_MAX_TTL', { default: '365d', min: '60s', max: '3650d', doc: 'The longest an API key may work (CreateApiKey\'s expires_in_seconds)' }),
  apiKeysPerOwner: count('AUTH_API_KEYS_PER_OWNER', { default: 20, min: 1, max: 1000, doc: 'API keys one user or service account may hold at once' }),
  webauthnRpId: text('AUTH_WEBAUTHN_RP_ID', {
    shown: '(none: passkeys are off)',
    doc: 'The WebAuthn relying party id: the domain passkeys are made for (e.g. `example.com`); the passkey RPCs answer FAILED_PRECONDITION without it',
    // A domain, never an IP address: browsers refuse an IP as an RP id.
    pattern: { test: (v) => /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(v) && !/^[\d.]+$/.test(v), says: 'a lower-case domain name, without scheme or port (not an IP address)' },
  }),
  webauthnRpName: textWithDefault('AUTH_WEBAUTHN_RP_NAME', {
    default: 'grpc-auth',
    doc: 'The name a browser shows for the relying party when it makes a passkey',
    pattern: { test: (v) => v.length <= 64 && !/[\u0000-\u001f]/.test(v), says: 'at most 64 printable characters' },
  }),
  webauthnOrigins: list('AUTH_WEBAUTHN_ORIGINS', {
    shown: '(https:// and the RP id)',
    doc: 'The exact origins a passkey ceremony may come from, comma-separated (e.g. `https://example.com,https://app.example.com`); each host must be the RP id or under it; `http://` only for `localhost`, outside production',
    item: (v) => (originProblem(v) === undefined ? undefined : `must list origins (${originProblem(v)})`),
  }),
  passkeyStartsPerAddress: count('AUTH_PASSKEY_STARTS_PER_ADDRESS', {
    default: 30,
    min: 1,
    max: 1_000_000,
    doc: 'StartPasskeyLogin calls one client address may make a minute (then RESOURCE_EXHAUSTED): behind a backend-for-frontend, set AUTH_TRUSTED_PROXIES so the address is the browser\'s',
  }),
  adminRequireMfa: flag('AUTH_ADMIN_REQUIRE_MFA', { doc: '`true` makes every AdminService call need a sign-in with a second factor (as `mfa: true` in its policy)' }),
  mfaRequiredRoles: list('AUTH_MFA_REQUIRED_ROLES', {
    shown: '(none)',
    doc: 'Roles granted only to sessions that began with a second factor, comma-separated (e.g. `admin`): a user holding one and no factor is told to enroll',
    item: (v) => (/^[a-z0-9_.-]{1,64}$/.test(v) ? undefined : 'must list roles: lower-case letters, digits, _ . -'),
  }),
  passwordResetHookUrl: text('AUTH_PASSWORD_RESET_HOOK_URL', {
    shown: '(none: RequestPasswordReset is off)',
    doc: 'Where RequestPasswordReset POSTs `{user_id, username, code, expires_at}` as a Standard Webhook (signed; retried with back-off), e.g. the team\'s mailer',
    url: true,
    pattern: { test: isHttpUrl, says: 'an http:// or https:// URL without user:password@ (fetch refuses credentials in a URL: put a token in the query, or check the signature alone)' },
  }),
  passwordResetHookSecret: text('AUTH_PASSWORD_RESET_HOOK_SECRET', {
    shown: '(none)',
    secret: true,
    doc: 'The hook\'s signing key, `whsec_` and base64 of at least 24 bytes (`echo whsec_$(openssl rand -base64 32)`); the receiver verifies `webhook-signature` with it',
    pattern: { test: isWebhookSecret, says: 'whsec_ and the base64 of at least 24 bytes' },
  }),
  logLevel: choice('AUTH_LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', doc: 'pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`' }),
  callTimeoutMs: duration('AUTH_CALL_TIMEOUT', { default: '10s', min: '1s', max: '300s', doc: "Upper bound on any call's work, whatever the client's deadline" }),
  requestTimeoutMs: duration('AUTH_REQUEST_TIMEOUT', { default: '10s', min: '1s', max: '300s', doc: "A call whose request has not arrived this long after its headers is ended (DEADLINE_EXCEEDED)" }),
  maxConnectionsPerAddress: count('AUTH_MAX_CONNECTIONS_PER_ADDRESS', { default: 64, min: 1, max: 100_000, doc: 'Open connections one client address may hold; more are closed on arrival (raise it for a load balancer in front)' }),
  maxConnections: count('AUTH_MAX_CONNECTIONS', { default: 10_000, min: 1, max: 1_000_000, doc: 'Open connections in all; more are closed on arrival' }),
  trustedProxies: list('AUTH_TRUSTED_PROXIES', {
    shown: '(none: x-forwarded-for ignored)',
    doc: 'Proxies whose `x-forwarded-for` names the client: addresses or CIDRs, comma-separated (also `loopback`, `uniquelocal`)',
    item: (v) => (isTrustedProxy(v) ? undefined : 'must list IP addresses, CIDRs, loopback, linklocal or uniquelocal'),
  }),
  shutdownGraceMs: duration('AUTH_SHUTDOWN_GRACE', { default: '10s', min: '0s', max: '600s', doc: 'On SIGTERM/SIGINT, how long in-flight calls may finish before they are cut' }),
  hashNice: count('AUTH_HASH_NICE', { default: 10, min: 0, max: 19, doc: 'How many nice values below the process the hashing threads run (Linux; at most 19): the main thread comes first. 0: the libuv pool at its priority' }),
  hashConcurrency: count('AUTH_HASH_CONCURRENCY', { default: 2, min: 1, max: 64, doc: 'Password checks computed at once (argon2id, 19 MiB each), half as many more for new passwords, each on a thread of its own (about 9 MB); more logins queue' }),
  store: choice('AUTH_STORE', ['memory', 'redis', 'postgres'], {
    default: 'memory',
    doc: '`memory` (this process only), `redis` or `postgres` (shared by every instance); when unset, `postgres` if `AUTH_DATABASE_URL` is set and `redis` if a Redis setting is',
  }),
  databaseUrl: text('AUTH_DATABASE_URL', {
    shown: '(none)',
    secret: true,
    doc: '`postgres://user:password@host:port/db`, with `?sslmode=verify-full` (and `sslrootcert=`) for TLS: the PostgreSQL store, the system of record. Several hosts as libpq takes them (`@h1:5432,h2:5432/db`) fail over to the writable one; `?pgbouncer=true` behind PgBouncer in transaction mode (noticed without it too). Never logged',
    pattern: { test: (v) => postgresUrlProblem(v) === undefined, why: postgresUrlProblem, says: 'a URL, postgres://user:password@host:port/db or postgresql://…, with hosts as host:port,host:port for fail-over and target_session_attrs read-write (the default), primary or any' },
  }),
  databaseCaFile: text('AUTH_DATABASE_CA_FILE', { shown: '(none)', doc: "PEM CA bundle: TLS to PostgreSQL, the server's certificate verified against it and its host name" }),
  databasePoolSize: count('AUTH_DATABASE_POOL_SIZE', { default: 10, min: 1, max: 1000, doc: 'PostgreSQL connections one instance holds at most; a call that finds them all busy waits its budget, then fails UNAVAILABLE' }),
  databaseStatementTimeoutMs: count('AUTH_DATABASE_STATEMENT_TIMEOUT_MS', {
    default: 500,
    min: 10,
    max: 60_000,
    doc: 'A PostgreSQL statement slower than this many milliseconds (lock waits included) is cancelled by the server and the call fails UNAVAILABLE',
  }),
  databaseMigrate: choice('AUTH_DATABASE_MIGRATE', ['auto', 'off'], { default: 'auto', doc: '`auto` applies pending schema migrations at start (once, under a lock); `off` leaves them to `grpc-auth migrate` and refuses an older schema' }),
  redisUrl: text('AUTH_REDIS_URL', {
    shown: '(none)',
    secret: true,
    doc: '`redis://[:password@]host:port[/db]` or `rediss://` for TLS; never logged',
    pattern: { test: isRedisUrl, says: 'one URL, redis://[:password@]host:port[/db] or rediss://… (for a Cluster set AUTH_REDIS_CLUSTER_NODES, for Sentinel AUTH_REDIS_SENTINELS)' },
  }),
  redisClusterNodes: list('AUTH_REDIS_CLUSTER_NODES', {
    shown: '(none)',
    doc: 'Redis Cluster: some of its nodes, `host:port,host:port` (the rest are found from them)',
    item: (v) => (isHostPort(v) ? undefined : 'must list host:port entries'),
  }),
  redisSentinels: list('AUTH_REDIS_SENTINELS', {
    shown: '(none)',
    doc: 'Redis Sentinel: the sentinels, `host:port,host:port`; with `AUTH_REDIS_SENTINEL_NAME`',
    item: (v) => (isHostPort(v) ? undefined : 'must list host:port entries'),
  }),
  redisSentinelName: text('AUTH_REDIS_SENTINEL_NAME', { shown: '(none)', doc: 'The name the sentinels monitor the primary under (e.g. `mymaster`)' }),
  redisUsername: text('AUTH_REDIS_USERNAME', { shown: '(none)', doc: 'ACL user of the Cluster nodes or the Sentinel-managed servers (a URL carries its own)' }),
  redisPassword: text('AUTH_REDIS_PASSWORD', { shown: '(none)', secret: true, doc: 'Password of the Cluster nodes or the Sentinel-managed servers; never logged' }),
  redisSentinelPassword: text('AUTH_REDIS_SENTINEL_PASSWORD', { shown: '(none)', secret: true, doc: 'Password of the sentinels themselves, when they have one' }),
  redisTls: flag('AUTH_REDIS_TLS', { doc: '`true` speaks TLS to the Cluster nodes or the Sentinel-managed servers and sentinels (a URL says `rediss://`)' }),
  redisKeyPrefix: textWithDefault('AUTH_REDIS_KEY_PREFIX', {
    default: 'auth:',
    doc: 'Prefix of every key, so several deployments can share one Redis',
    pattern: { test: (v) => /^[A-Za-z0-9:_.-]{1,64}$/.test(v), says: '1 to 64 of letters, digits and : _ . -' },
  }),
  redisCommandTimeoutMs: count('AUTH_REDIS_COMMAND_TIMEOUT_MS', { default: 500, min: 10, max: 60_000, doc: 'A Redis command slower than this many milliseconds fails the call with UNAVAILABLE' }),
  storeWait: flag('AUTH_STORE_WAIT', {
    doc: '`true`: when the store refuses the service at start-up (a wrong password, a missing database or privilege), start NOT_SERVING and keep trying; by default the service exits 2 saying why',
  }),
  storeTimeoutMs: duration('AUTH_STORE_TIMEOUT', { default: '2s', min: '1s', max: '60s', doc: 'Any store operation (memory, Redis or PostgreSQL) slower than this fails the call with UNAVAILABLE' }),
  metricsAddress: text('AUTH_METRICS_ADDRESS', { shown: '(off)', pattern: HOST_PORT, doc: '`host:port` for Prometheus metrics at `GET /metrics` (e.g. `127.0.0.1:9464`)' }),
  tlsCert: text('AUTH_TLS_CERT', { shown: '(none: plaintext)', doc: 'PEM certificate chain of the server; with `AUTH_TLS_KEY` turns TLS on' }),
  tlsKey: text('AUTH_TLS_KEY', { shown: '(none)', doc: 'PEM private key of that certificate' }),
  tlsClientCa: text('AUTH_TLS_CLIENT_CA', { shown: '(none: no client certificates)', doc: 'PEM CA bundle: clients must present a certificate it signed (mTLS)' }),
  allowInsecure: flag('AUTH_ALLOW_INSECURE', { doc: '`true` allows plaintext with `NODE_ENV=production` when TLS ends in front of the service (logged as a warning)' }),
} satisfies Record<string, Setting<unknown>>;

/** NODE_ENV is read too; it is not ours, so it is documented beside the table's settings. */
export const NODE_ENV_DOC = { variable: 'NODE_ENV', shownDefault: 'development', doc: '`production` requires `AUTH_ISSUER`, `AUTH_AUDIENCE`, a signing key (ES256) and TLS (`AUTH_TLS_CERT` and `AUTH_TLS_KEY`, or `AUTH_ALLOW_INSECURE=true` behind a proxy that ends TLS)' };

type Values = { -readonly [K in keyof typeof settings]: ReturnType<(typeof settings)[K]['read']> };

export interface Config extends Omit<Values, 'issuer' | 'audience' | 'jwtSecret' | 'tlsCert' | 'tlsKey' | 'tlsClientCa'> {
  readonly production: boolean;
  readonly issuer: string;
  readonly audience: string;
  readonly jwtSecret: Buffer | undefined;
  /** PEM files; TLS is on when set, mutual when clientCa is too. */
  readonly tls: { readonly cert: string; readonly key: string; readonly clientCa: string | undefined } | undefined;
}

/** Every problem of a configuration; `message` lists them one per line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

export type Env = Partial<Record<string, string | undefined>>;

/** Rules between settings; each returns the problem, if any. Only run on values that parsed. */
const rules: Array<(v: Values, production: boolean) => string | undefined> = [
  (v, prod) => (prod && v.issuer === undefined ? 'AUTH_ISSUER is required when NODE_ENV=production' : undefined),
  (v, prod) => (prod && v.audience === undefined ? 'AUTH_AUDIENCE is required when NODE_ENV=production' : undefined),
  (v) => (v.refreshTtlMs < v.accessTtlMs ? 'AUTH_REFRESH_TTL must not be shorter than AUTH_ACCESS_TTL' : undefined),
  (v) => (v.sessionMaxAgeMs < v.refreshTtlMs ? 'AUTH_SESSION_MAX_AGE must not be shorter than AUTH_REFRESH_TTL' : undefined),
  (v) => (v.jwtAlg === 'HS256' && v.signingKeyFiles.length > 0 ? 'AUTH_SIGNING_KEY_FILE is for ES256; with AUTH_JWT_ALG=HS256 set AUTH_JWT_SECRET' : undefined),
  (v) => (v.jwtAlg === 'HS256' && v.jwtSecret === undefined ? 'AUTH_JWT_SECRET is required when AUTH_JWT_ALG=HS256' : undefined),
  (v) =>
    v.jwtAlg === 'HS256' && v.jwtSecret !== undefined && Buffer.byteLength(v.jwtSecret, 'utf8') < 32
      ? 'AUTH_JWT_SECRET must be at least 32 bytes (RFC 7518 section 3.2)'
      : undefined,
  (v) => (v.jwtAlg === 'ES256' && v.jwtSecret !== undefined ? 'AUTH_JWT_SECRET is only for AUTH_JWT_ALG=HS256; ES256 reads AUTH_SIGNING_KEY_FILE' : undefined),
  (v, prod) =>
    prod && v.jwtAlg === 'ES256' && v.signingKeyFiles.length === 0
      ? 'AUTH_SIGNING_KEY_FILE is required when NODE_ENV=production (an ephemeral key would log everyone out on restart)'
      : undefined,
  (v) => {
    if (v.store !== 'redis') return undefined;
    const given = [v.redisUrl !== undefined, v.redisClusterNodes.length > 0, v.redisSentinels.length > 0].filter(Boolean).length;
    if (given === 0) return 'AUTH_STORE=redis needs one of AUTH_REDIS_URL, AUTH_REDIS_CLUSTER_NODES or AUTH_REDIS_SENTINELS';
    if (given > 1) return 'give only one of AUTH_REDIS_URL, AUTH_REDIS_CLUSTER_NODES and AUTH_REDIS_SENTINELS';
    return undefined;
  },
  (v) => (v.store === 'postgres' && v.databaseUrl === undefined ? 'AUTH_STORE=postgres needs AUTH_DATABASE_URL' : undefined),
  (v) =>
    v.store === 'memory' && redisGiven(v)
      ? `${redisGiven(v)} is for the Redis store: unset AUTH_STORE (or set it to redis), not memory; the memory store would ignore it and keep everything in this process`
      : undefined,
  (v) => (v.store !== 'postgres' && v.databaseUrl !== undefined ? `AUTH_DATABASE_URL is for the PostgreSQL store: unset AUTH_STORE (or set it to postgres), not ${v.store}` : undefined),
  (v) =>
    v.store === 'postgres' && (v.redisUrl !== undefined || v.redisClusterNodes.length > 0 || v.redisSentinels.length > 0)
      ? 'AUTH_DATABASE_URL and Redis settings exclude each other: PostgreSQL holds everything (sessions and throttles too), so leave the AUTH_REDIS_* settings unset'
      : undefined,
  (v) => (v.databaseCaFile !== undefined && v.databaseUrl === undefined ? 'AUTH_DATABASE_CA_FILE needs AUTH_DATABASE_URL' : undefined),
  (v) =>
    v.store === 'postgres' && v.storeTimeoutMs < 3 * v.databaseStatementTimeoutMs + 250
      ? `AUTH_STORE_TIMEOUT must be at least 3 × AUTH_DATABASE_STATEMENT_TIMEOUT_MS + 250 ms (${3 * v.databaseStatementTimeoutMs + 250} ms): a call must outlast the database's own bound, so it hears how a write ended`
      : undefined,
  // The same for Redis: a script's deadline is a command timeout plus 250 ms after it was sent, and
  // an operation sends up to three in a row (the last-admin rule's, a throttle's two); were the
  // store's bound shorter, a call could be told UNAVAILABLE while its last script may still run in time.
  (v) =>
    v.store === 'redis' && v.storeTimeoutMs < 3 * v.redisCommandTimeoutMs + 250
      ? `AUTH_STORE_TIMEOUT must be at least 3 × AUTH_REDIS_COMMAND_TIMEOUT_MS + 250 ms (${3 * v.redisCommandTimeoutMs + 250} ms): a call must outlast the deadline its writes carry, so UNAVAILABLE means not done`
      : undefined,
  (v) => (v.redisSentinels.length > 0 && v.redisSentinelName === undefined ? 'AUTH_REDIS_SENTINELS needs AUTH_REDIS_SENTINEL_NAME' : undefined),
  (v) => (v.redisSentinelName !== undefined && v.redisSentinels.length === 0 ? 'AUTH_REDIS_SENTINEL_NAME needs AUTH_REDIS_SENTINELS' : undefined),
  (v) => (v.redisUrl !== undefined && (v.redisUsername !== undefined || v.redisPassword !== undefined || v.redisTls) ? 'AUTH_REDIS_URL carries its own credentials and scheme: leave AUTH_REDIS_USERNAME, AUTH_REDIS_PASSWORD and AUTH_REDIS_TLS unset with it' : undefined),
  (v) => (v.passwordResetHookUrl !== undefined && v.passwordResetHookSecret === undefined ? 'AUTH_PASSWORD_RESET_HOOK_URL needs AUTH_PASSWORD_RESET_HOOK_SECRET: the receiver must be able to tell our notices from forged ones' : undefined),
  (v) => (v.passwordResetHookSecret !== undefined && v.passwordResetHookUrl === undefined ? 'AUTH_PASSWORD_RESET_HOOK_SECRET needs AUTH_PASSWORD_RESET_HOOK_URL' : undefined),
  (v, prod) =>
    prod && v.passwordResetHookUrl !== undefined && !v.passwordResetHookUrl.startsWith('https:') && !v.allowInsecure
      ? 'AUTH_PASSWORD_RESET_HOOK_URL must be https:// when NODE_ENV=production (it carries reset codes), or AUTH_ALLOW_INSECURE=true'
      : undefined,
  (v) => (v.webauthnOrigins.length > 0 && v.webauthnRpId === undefined ? 'AUTH_WEBAUTHN_ORIGINS needs AUTH_WEBAUTHN_RP_ID' : undefined),
  (v) => {
    const outside = v.webauthnRpId === undefined ? [] : v.webauthnOrigins.filter((o) => { const host = new URL(o).hostname; return host !== v.webauthnRpId && !host.endsWith(`.${v.webauthnRpId}`); });
    return outside.length > 0 ? `AUTH_WEBAUTHN_ORIGINS: ${outside.join(', ')} is not on AUTH_WEBAUTHN_RP_ID (${v.webauthnRpId}) or under it; browsers refuse such a ceremony` : undefined;
  },
  (v, prod) => {
    // Browsers run WebAuthn in secure contexts only: https, or http on localhost (for development).
    const plain = v.webauthnOrigins.filter((o) => o.startsWith('http:') && (prod || new URL(o).hostname !== 'localhost'));
    if (plain.length === 0) return undefined;
    return prod
      ? `AUTH_WEBAUTHN_ORIGINS must be https:// when NODE_ENV=production (${plain.join(', ')})`
      : `AUTH_WEBAUTHN_ORIGINS: ${plain.join(', ')} is http:// on a host other than localhost; browsers refuse a passkey ceremony there`;
  },
  (v) => ((v.tlsCert === undefined) !== (v.tlsKey === undefined) ? 'AUTH_TLS_CERT and AUTH_TLS_KEY go together: set both or neither' : undefined),
  (v) => (v.tlsClientCa !== undefined && v.tlsCert === undefined ? 'AUTH_TLS_CLIENT_CA needs AUTH_TLS_CERT and AUTH_TLS_KEY' : undefined),
  (v, prod) =>
    prod && v.tlsCert === undefined && !v.allowInsecure
      ? 'NODE_ENV=production needs AUTH_TLS_CERT and AUTH_TLS_KEY (passwords and tokens must not cross a network in clear), or AUTH_ALLOW_INSECURE=true when TLS ends in front of the service'
      : undefined,
];

/** The Redis setting that names a deployment, if any (the variable's name). */
function redisGiven(v: Pick<Values, 'redisUrl' | 'redisClusterNodes' | 'redisSentinels'>): string | undefined {
  if (v.redisUrl !== undefined) return 'AUTH_REDIS_URL';
  if ((v.redisClusterNodes ?? []).length > 0) return 'AUTH_REDIS_CLUSTER_NODES';
  if ((v.redisSentinels ?? []).length > 0) return 'AUTH_REDIS_SENTINELS';
  return undefined;
}

export interface ConfigReport {
  /** Undefined when there are problems. */
  readonly config: Config | undefined;
  readonly problems: readonly string[];
  /** AUTH_* variables that are set but are no setting (a typo is never silently ignored). */
  readonly unknown: ReadonlyArray<{ readonly variable: string; readonly suggestion: string | undefined }>;
}

/** Reads every setting and reports every problem at once. */
export function readConfig(env: Env): ConfigReport {
  const problems: string[] = [];
  const values: Partial<Record<string, unknown>> = {};
  for (const [field, setting] of Object.entries(settings) as Array<[string, Setting<unknown>]>) {
    const raw = env[setting.variable];
    try {
      values[field] = setting.read(raw === undefined || raw.trim() === '' ? undefined : raw.trim());
    } catch (err) {
      if (!(err instanceof SettingError)) throw err;
      problems.push(`${setting.variable} ${err.message}`);
    }
  }
  const production = env.NODE_ENV === 'production';
  // AUTH_DATABASE_URL alone selects the PostgreSQL store, a Redis setting alone the Redis store
  // (both at once are refused by the rules below).
  if ((env.AUTH_STORE ?? '').trim() === '') {
    if (values.databaseUrl !== undefined) values.store = 'postgres';
    else if (redisGiven(values as Values)) values.store = 'redis';
  }
  if (problems.length === 0) {
    for (const rule of rules) {
      const problem = rule(values as Values, production);
      if (problem !== undefined) problems.push(problem);
    }
  }
  const unknown = unknownVariables(env);
  if (problems.length > 0) return { config: undefined, problems, unknown };
  const v = values as Values;
  const { tlsCert, tlsKey, tlsClientCa, jwtSecret, issuer, audience, ...rest } = v;
  const config: Config = Object.freeze({
    ...rest,
    // The origin a ceremony may come from by default: the RP id itself, over https.
    webauthnOrigins: rest.webauthnRpId !== undefined && rest.webauthnOrigins.length === 0 ? [`https://${rest.webauthnRpId}`] : rest.webauthnOrigins,
    production,
    issuer: issuer ?? DEV_ISSUER,
    audience: audience ?? DEV_AUDIENCE,
    jwtSecret: jwtSecret === undefined ? undefined : Buffer.from(jwtSecret, 'utf8'),
    tls: tlsCert === undefined ? undefined : Object.freeze({ cert: tlsCert, key: tlsKey!, clientCa: tlsClientCa }),
  });
  return { config, problems, unknown };
}

/** Reads and validates the whole configuration; throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const report = readConfig(env);
  if (!report.config) throw new ConfigError(report.problems);
  return report.config;
}

const KNOWN = new Set(Object.values(settings).map((s: Setting<unknown>) => s.variable));

function unknownVariables(env: Env): Array<{ variable: string; suggestion: string | undefined }> {
  return Object.keys(env)
    .filter((name) => name.startsWith('AUTH_') && !KNOWN.has(name) && env[name] !== undefined)
    .sort()
    .map((variable) => ({ variable, suggestion: closest(variable) }));
}

/** The known variable within two edits of `name`, if there is one. */
function closest(name: string): string | undefined {
  let best: { variable: string; distance: number } | undefined;
  for (const variable of KNOWN) {
    const distance = editDistance(name, variable);
    if (distance <= 2 && (!best || distance < best.distance)) best = { variable, distance };
  }
  return best?.variable;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length]!;
}

/** The configuration table of docs/configuration.md, generated from the settings. */
export function configTable(): string {
  const rows = [NODE_ENV_DOC, ...Object.values(settings).map((s: Setting<unknown>) => ({ variable: s.variable, shownDefault: s.shownDefault, doc: s.doc }))];
  return ['| Variable | Default | Meaning |', '|---|---|---|', ...rows.map((r) => `| \`${r.variable}\` | \`${r.shownDefault}\` | ${r.doc} |`)].join('\n');
}
