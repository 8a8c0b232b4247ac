import { maskUrl } from '../../src/settings';
import { ConfigError, loadConfig, readConfig } from '../../src/config';
import { formatDuration, parseDurationMs } from '../../src/settings';

describe('loadConfig', () => {
  test('defaults', () => {
    expect(loadConfig({})).toEqual({
      production: false,
      address: '127.0.0.1:50051',
      issuer: 'urn:grpc-auth:dev',
      audience: 'urn:grpc-auth:services',
      accessTtlMs: 900_000,
      refreshTtlMs: 14 * 86_400_000,
      sessionMaxAgeMs: 30 * 86_400_000,
      refreshReuseIntervalMs: 10_000,
      clockSkewMs: 30_000,
      databaseUrl: undefined,
      databaseCaFile: undefined,
      databasePoolSize: 10,
      databaseStatementTimeoutMs: 500,
      databaseMigrate: 'auto',
      maxSessionsPerUser: 100,
      jwtAlg: 'ES256',
      signingKeyFiles: [],
      jwtSecret: undefined,
      registration: 'open',
      registerPerAddressPerHour: 20,
      registerPerMinute: 120,
      usersFile: undefined,
      webauthnOrigins: [],
      passkeyStartsPerAddress: 30,
      apiKeySecret: undefined,
      apiKeyMaxTtlMs: 365 * 86_400_000,
      apiKeysPerOwner: 20,
      webauthnRpId: undefined,
      webauthnRpName: 'grpc-auth',
      passwordMinLength: 15,
      passwordDenylistFile: undefined,
      totpIssuer: 'grpc-auth',
      adminRequireMfa: false,
      mfaRequiredRoles: [],
      passwordResetHookUrl: undefined,
      passwordResetHookSecret: undefined,
      logLevel: 'info',
      callTimeoutMs: 10_000,
      requestTimeoutMs: 10_000,
      maxConnectionsPerAddress: 64,
      maxConnections: 10_000,
      shutdownGraceMs: 10_000,
      hashConcurrency: 2,
      hashNice: 10,
      store: 'memory',
      redisUrl: undefined,
      redisClusterNodes: [],
      redisSentinels: [],
      redisSentinelName: undefined,
      redisUsername: undefined,
      redisPassword: undefined,
      redisSentinelPassword: undefined,
      redisTls: false,
      redisKeyPrefix: 'auth:',
      redisCommandTimeoutMs: 500,
      storeTimeoutMs: 2000,
      storeWait: false,
      metricsAddress: undefined,
      tls: undefined,
      trustedProxies: [],
      allowInsecure: false,
    });
  });

  test.each([
    { name: 'durations with units', env: { AUTH_ACCESS_TTL: '5m', AUTH_REFRESH_TTL: '2h', AUTH_SESSION_MAX_AGE: '1d' }, want: { accessTtlMs: 300_000, refreshTtlMs: 7_200_000, sessionMaxAgeMs: 86_400_000 } },
    { name: 'HS256', env: { AUTH_JWT_ALG: 'HS256', AUTH_JWT_SECRET: 'x'.repeat(32) }, want: { jwtAlg: 'HS256', jwtSecret: Buffer.from('x'.repeat(32)) } },
    {
      name: 'AUTH_DATABASE_URL alone selects PostgreSQL',
      env: { AUTH_DATABASE_URL: 'postgres://auth:pw@db:5432/auth?sslmode=verify-full' },
      want: { store: 'postgres', databaseUrl: 'postgres://auth:pw@db:5432/auth?sslmode=verify-full', databasePoolSize: 10, databaseStatementTimeoutMs: 500, databaseMigrate: 'auto' },
    },
    {
      name: 'production with everything',
      env: { NODE_ENV: 'production', AUTH_ISSUER: 'https://a', AUTH_AUDIENCE: 'b', AUTH_SIGNING_KEY_FILE: '/k.pem', AUTH_TLS_CERT: '/c', AUTH_TLS_KEY: '/k', AUTH_TLS_CLIENT_CA: '/ca' },
      want: { production: true, signingKeyFiles: ['/k.pem'], tls: { cert: '/c', key: '/k', clientCa: '/ca' } },
    },
    { name: 'production behind a TLS proxy', env: { NODE_ENV: 'production', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a', AUTH_SIGNING_KEY_FILE: '/k', AUTH_ALLOW_INSECURE: 'true' }, want: { allowInsecure: true, tls: undefined } },
    { name: 'the Redis store', env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: 'redis://:pw@10.0.0.1:6379/2' }, want: { store: 'redis', redisUrl: 'redis://:pw@10.0.0.1:6379/2' } },
    // A Redis setting alone selects the Redis store, as AUTH_DATABASE_URL alone selects PostgreSQL.
    { name: 'AUTH_REDIS_URL alone: the Redis store', env: { AUTH_REDIS_URL: 'redis://10.0.0.1:6379' }, want: { store: 'redis' } },
    { name: 'AUTH_REDIS_CLUSTER_NODES alone: the Redis store', env: { AUTH_REDIS_CLUSTER_NODES: 'a:7000,b:7000' }, want: { store: 'redis' } },
    { name: 'AUTH_REDIS_SENTINELS alone: the Redis store', env: { AUTH_REDIS_SENTINELS: 'a:26379', AUTH_REDIS_SENTINEL_NAME: 'main' }, want: { store: 'redis' } },
    { name: 'IPv6 address', env: { AUTH_ADDRESS: '[::1]:9000' }, want: { address: '[::1]:9000' } },
    { name: 'trusted proxies', env: { AUTH_TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.7,loopback,2001:db8::/32' }, want: { trustedProxies: ['10.0.0.0/8', '192.0.2.7', 'loopback', '2001:db8::/32'] } },
  ])('accepts $name', ({ env, want }) => {
    expect(loadConfig(env)).toMatchObject(want);
  });

  test.each([
    { env: { AUTH_ADDRESS: 'localhost' }, want: /^AUTH_ADDRESS must be host:port/ },
    { env: { AUTH_ADDRESS: '1.2.3.4:70000' }, want: /^AUTH_ADDRESS/ },
    { env: { AUTH_ACCESS_TTL: '0' }, want: /^AUTH_ACCESS_TTL must be between 10s and 1d/ },
    { env: { AUTH_ACCESS_TTL: 'soon' }, want: /^AUTH_ACCESS_TTL must be a duration/ },
    { env: { AUTH_ACCESS_TTL: '-5' }, want: /^AUTH_ACCESS_TTL must be a duration/ },
    { env: { AUTH_REFRESH_TTL: '60', AUTH_ACCESS_TTL: '900' }, want: /^AUTH_REFRESH_TTL must not be shorter than AUTH_ACCESS_TTL/ },
    { env: { AUTH_SESSION_MAX_AGE: '1h' }, want: /^AUTH_SESSION_MAX_AGE must not be shorter than AUTH_REFRESH_TTL/ },
    { env: { AUTH_REFRESH_REUSE_INTERVAL: '10m' }, want: /^AUTH_REFRESH_REUSE_INTERVAL must be between 0s and 300s/ },
    { env: { AUTH_SIGNING_KEY_FILE: 'a.pem,,b.pem' }, want: /^AUTH_SIGNING_KEY_FILE has an empty item/ },
    { env: { AUTH_JWT_ALG: 'RS256' }, want: /^AUTH_JWT_ALG must be one of ES256, HS256/ },
    { env: { AUTH_JWT_ALG: 'HS256' }, want: /^AUTH_JWT_SECRET is required/ },
    { env: { AUTH_JWT_ALG: 'HS256', AUTH_JWT_SECRET: 'short' }, want: /^AUTH_JWT_SECRET must be at least 32 bytes/ },
    { env: { AUTH_JWT_ALG: 'HS256', AUTH_JWT_SECRET: 'x'.repeat(32), AUTH_SIGNING_KEY_FILE: '/k' }, want: /^AUTH_SIGNING_KEY_FILE is for ES256/ },
    { env: { AUTH_JWT_SECRET: 'x'.repeat(32) }, want: /^AUTH_JWT_SECRET is only for AUTH_JWT_ALG=HS256/ },
    { env: { NODE_ENV: 'production', AUTH_AUDIENCE: 'a', AUTH_SIGNING_KEY_FILE: '/k' }, want: /^AUTH_ISSUER is required when NODE_ENV=production/ },
    { env: { NODE_ENV: 'production', AUTH_ISSUER: 'i', AUTH_SIGNING_KEY_FILE: '/k' }, want: /^AUTH_AUDIENCE is required when NODE_ENV=production/ },
    { env: { NODE_ENV: 'production', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a', AUTH_ALLOW_INSECURE: 'true' }, want: /^AUTH_SIGNING_KEY_FILE is required when NODE_ENV=production/ },
    { env: { NODE_ENV: 'production', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a', AUTH_SIGNING_KEY_FILE: '/k' }, want: /^NODE_ENV=production needs AUTH_TLS_CERT and AUTH_TLS_KEY .*or AUTH_ALLOW_INSECURE=true/ },
    { env: { AUTH_TLS_CERT: '/c' }, want: /^AUTH_TLS_CERT and AUTH_TLS_KEY go together/ },
    { env: { AUTH_TLS_CLIENT_CA: '/ca' }, want: /^AUTH_TLS_CLIENT_CA needs AUTH_TLS_CERT and AUTH_TLS_KEY/ },
    { env: { AUTH_ALLOW_INSECURE: 'yes' }, want: /^AUTH_ALLOW_INSECURE must be one of true, false/ },
    { env: { AUTH_METRICS_ADDRESS: '9464' }, want: /^AUTH_METRICS_ADDRESS must be host:port/ },
    { env: { AUTH_REGISTRATION: 'maybe' }, want: /^AUTH_REGISTRATION must be one of open, closed/ },
    { env: { AUTH_PASSWORD_MIN_LENGTH: '4' }, want: /^AUTH_PASSWORD_MIN_LENGTH must be a whole number from 8 to 64/ },
    { env: { AUTH_PASSWORD_MIN_LENGTH: '65' }, want: /^AUTH_PASSWORD_MIN_LENGTH/ },
    { env: { AUTH_LOG_LEVEL: 'loud' }, want: /^AUTH_LOG_LEVEL must be one of/ },
    { env: { AUTH_HASH_CONCURRENCY: '0' }, want: /^AUTH_HASH_CONCURRENCY must be a whole number from 1 to 64/ },
    { env: { AUTH_HASH_NICE: '20' }, want: /^AUTH_HASH_NICE must be a whole number from 0 to 19/ },
    { env: { AUTH_HASH_NICE: '-1' }, want: /^AUTH_HASH_NICE must be a whole number from 0 to 19/ },
    { env: { AUTH_STORE: 'sqlite' }, want: /^AUTH_STORE must be one of memory, redis, postgres/ },
    { env: { AUTH_STORE: 'postgres' }, want: /^AUTH_STORE=postgres needs AUTH_DATABASE_URL$/ },
    { env: { AUTH_DATABASE_URL: 'mysql://h/db' }, want: /^AUTH_DATABASE_URL must be a URL, postgres:\/\/user:password@host:port\/db or postgresql:\/\/…, .* \(not a postgres:\/\/ or postgresql:\/\/ URL\)$/ },
    { env: { AUTH_DATABASE_URL: 'postgres://u:secret@h1:5432,h2:99999/db' }, want: /^AUTH_DATABASE_URL must be .* \(port 99999 is out of range\)$/ },
    { env: { AUTH_DATABASE_URL: 'postgres://u:secret@h1,h2/db?target_session_attrs=standby' }, want: /\(target_session_attrs=standby: the store writes, so it needs read-write \(the default\), primary or any\)$/ },
    { env: { AUTH_DATABASE_URL: 'postgres://u:secret@h1/db?pgbouncer=yes' }, want: /\(pgbouncer=yes: true or false\)$/ },
    { env: { AUTH_STORE: 'memory', AUTH_DATABASE_URL: 'postgres://h/db' }, want: /^AUTH_DATABASE_URL is for the PostgreSQL store: unset AUTH_STORE \(or set it to postgres\), not memory$/ },
    { env: { AUTH_STORE: 'memory', AUTH_REDIS_URL: 'redis://h:6379' }, want: /^AUTH_REDIS_URL is for the Redis store: unset AUTH_STORE \(or set it to redis\), not memory; the memory store would ignore it/ },
    { env: { AUTH_DATABASE_URL: 'postgres://h/db', AUTH_REDIS_URL: 'redis://h:6379' }, want: /^AUTH_DATABASE_URL and Redis settings exclude each other/ },
    { env: { AUTH_DATABASE_CA_FILE: '/ca.pem' }, want: /^AUTH_DATABASE_CA_FILE needs AUTH_DATABASE_URL$/ },
    { env: { AUTH_DATABASE_URL: 'postgres://h/db', AUTH_DATABASE_STATEMENT_TIMEOUT_MS: '1000' }, want: /^AUTH_STORE_TIMEOUT must be at least 3 × AUTH_DATABASE_STATEMENT_TIMEOUT_MS \+ 250 ms \(3250 ms\)/ },
    { env: { AUTH_REDIS_URL: 'redis://h:6379', AUTH_REDIS_COMMAND_TIMEOUT_MS: '600' }, want: /^AUTH_STORE_TIMEOUT must be at least 3 × AUTH_REDIS_COMMAND_TIMEOUT_MS \+ 250 ms \(2050 ms\)/ },
    { env: { AUTH_DATABASE_MIGRATE: 'sometimes' }, want: /^AUTH_DATABASE_MIGRATE must be one of auto, off/ },
    { env: { AUTH_STORE: 'redis' }, want: /^AUTH_STORE=redis needs one of AUTH_REDIS_URL, AUTH_REDIS_CLUSTER_NODES or AUTH_REDIS_SENTINELS$/ },
    { env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: 'localhost:6379' }, want: /^AUTH_REDIS_URL must be one URL, redis:\/\/\[:password@\]host:port\[\/db\] or rediss:\/\/… \(for a Cluster set AUTH_REDIS_CLUSTER_NODES, for Sentinel AUTH_REDIS_SENTINELS\)$/ },
    { env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: 'redis://a:6379,b:6379' }, want: /^AUTH_REDIS_URL must be one URL/ },
    { env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: 'redis://a:6379', AUTH_REDIS_CLUSTER_NODES: 'a:7000' }, want: /exactly one of|only one of/ },
    { env: { AUTH_STORE: 'redis', AUTH_REDIS_SENTINELS: 'a:26379' }, want: /AUTH_REDIS_SENTINEL_NAME/ },
    { env: { AUTH_PASSWORD_RESET_HOOK_URL: 'https://mailer.internal/reset' }, want: /^AUTH_PASSWORD_RESET_HOOK_URL needs AUTH_PASSWORD_RESET_HOOK_SECRET/ },
    { env: { AUTH_PASSWORD_RESET_HOOK_SECRET: 'whsec_' + Buffer.alloc(32, 1).toString('base64') }, want: /^AUTH_PASSWORD_RESET_HOOK_SECRET needs AUTH_PASSWORD_RESET_HOOK_URL$/ },
    { env: { AUTH_PASSWORD_RESET_HOOK_URL: 'https://mailer.internal/reset', AUTH_PASSWORD_RESET_HOOK_SECRET: 'whsec_' + Buffer.alloc(16, 1).toString('base64') }, want: /AUTH_PASSWORD_RESET_HOOK_SECRET must be whsec_ and the base64 of at least 24 bytes/ },
    { env: { AUTH_PASSWORD_RESET_HOOK_URL: 'mailer.internal', AUTH_PASSWORD_RESET_HOOK_SECRET: 'whsec_' + Buffer.alloc(32, 1).toString('base64') }, want: /AUTH_PASSWORD_RESET_HOOK_URL must be an http:\/\/ or https:\/\/ URL/ },
    // fetch refuses credentials in a URL: refused at start, and the error shows the URL masked.
    {
      env: { AUTH_PASSWORD_RESET_HOOK_URL: 'https://mailer:hunter6pass@mailer.internal/reset?token=hunter7tok', AUTH_PASSWORD_RESET_HOOK_SECRET: 'whsec_' + Buffer.alloc(32, 1).toString('base64') },
      want: /^AUTH_PASSWORD_RESET_HOOK_URL must be an http:\/\/ or https:\/\/ URL without user:password@ .*\(got "https:\/\/\*\*\*\*@mailer.internal\/reset\?\*\*\*\*"\)$/,
    },
    {
      env: { NODE_ENV: 'production', AUTH_ISSUER: 'https://a', AUTH_AUDIENCE: 'b', AUTH_SIGNING_KEY_FILE: '/k.pem', AUTH_TLS_CERT: '/c', AUTH_TLS_KEY: '/k', AUTH_PASSWORD_RESET_HOOK_URL: 'http://mailer.internal/reset', AUTH_PASSWORD_RESET_HOOK_SECRET: 'whsec_' + Buffer.alloc(32, 1).toString('base64') },
      want: /^AUTH_PASSWORD_RESET_HOOK_URL must be https:\/\/ when NODE_ENV=production/,
    },
    { env: { AUTH_MFA_REQUIRED_ROLES: 'admin,Bad Role' }, want: /AUTH_MFA_REQUIRED_ROLES/ },
    { env: { AUTH_TOTP_ISSUER: 'acme:corp' }, want: /AUTH_TOTP_ISSUER must be at most 64 characters, without : or %/ },
    { env: { AUTH_WEBAUTHN_RP_ID: 'https://example.com' }, want: /^AUTH_WEBAUTHN_RP_ID must be a lower-case domain name, without scheme or port/ },
    { env: { AUTH_WEBAUTHN_ORIGINS: 'https://example.com' }, want: /^AUTH_WEBAUTHN_ORIGINS needs AUTH_WEBAUTHN_RP_ID$/ },
    { env: { AUTH_WEBAUTHN_RP_ID: 'example.com', AUTH_WEBAUTHN_ORIGINS: 'https://example.com/login' }, want: /^AUTH_WEBAUTHN_ORIGINS must list origins \(https:\/\/example.com\/login is not an origin: write it as https:\/\/example.com\)/ },
    { env: { AUTH_WEBAUTHN_RP_ID: 'example.com', AUTH_WEBAUTHN_ORIGINS: 'https://app.example.com,https://evil.com' }, want: /^AUTH_WEBAUTHN_ORIGINS: https:\/\/evil.com is not on AUTH_WEBAUTHN_RP_ID \(example.com\) or under it/ },
    { env: { AUTH_WEBAUTHN_RP_ID: 'example.com', AUTH_WEBAUTHN_ORIGINS: 'https://notexample.com' }, want: /is not on AUTH_WEBAUTHN_RP_ID/ },
    {
      env: { NODE_ENV: 'production', AUTH_ISSUER: 'https://a', AUTH_AUDIENCE: 'b', AUTH_SIGNING_KEY_FILE: '/k.pem', AUTH_TLS_CERT: '/c', AUTH_TLS_KEY: '/k', AUTH_WEBAUTHN_RP_ID: 'localhost', AUTH_WEBAUTHN_ORIGINS: 'http://localhost:8080' },
      want: /^AUTH_WEBAUTHN_ORIGINS must be https:\/\/ when NODE_ENV=production \(http:\/\/localhost:8080\)$/,
    },
    { env: { AUTH_WEBAUTHN_RP_ID: 'example.com', AUTH_WEBAUTHN_ORIGINS: 'http://example.com' }, want: /^AUTH_WEBAUTHN_ORIGINS: http:\/\/example.com is http:\/\/ on a host other than localhost; browsers refuse a passkey ceremony there$/ },
    { env: { AUTH_WEBAUTHN_RP_ID: '127.0.0.1' }, want: /^AUTH_WEBAUTHN_RP_ID must be a lower-case domain name, without scheme or port \(not an IP address\)/ },
    { env: { AUTH_TRUSTED_PROXIES: '10.0.0.0/33' }, want: /^AUTH_TRUSTED_PROXIES must list IP addresses, CIDRs, loopback, linklocal or uniquelocal/ },
    { env: { AUTH_TRUSTED_PROXIES: 'proxy.internal' }, want: /^AUTH_TRUSTED_PROXIES must list IP addresses/ },
    { env: { AUTH_STORE: 'redis', AUTH_REDIS_CLUSTER_NODES: 'a' }, want: /AUTH_REDIS_CLUSTER_NODES/ },
    { env: { AUTH_STORE: 'redis', AUTH_REDIS_CLUSTER_NODES: 'a:70000' }, want: /AUTH_REDIS_CLUSTER_NODES/ },
    { env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: 'redis://a:6379', AUTH_REDIS_PASSWORD: 'x' }, want: /AUTH_REDIS_PASSWORD/ },
    { env: { AUTH_REDIS_KEY_PREFIX: 'a b' }, want: /^AUTH_REDIS_KEY_PREFIX must be/ },
    { env: { AUTH_REDIS_COMMAND_TIMEOUT_MS: '5' }, want: /^AUTH_REDIS_COMMAND_TIMEOUT_MS must be a whole number from 10 to 60000/ },
  ])('refuses $env with a message naming the variable', ({ env, want }) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(want);
  });

  test('the secret never appears in an error message', () => {
    const secret = 'tooshort-secret-value';
    expect(() => loadConfig({ AUTH_JWT_ALG: 'HS256', AUTH_JWT_SECRET: secret })).toThrow(/^(?!.*tooshort-secret-value)/);
  });

  test('every problem is reported at once, each naming its variable', () => {
    const report = readConfig({ AUTH_ACCESS_TTL: 'soon', AUTH_STORE: 'sqlite', AUTH_LOG_LEVEL: 'loud', AUTH_HASH_CONCURRENCY: '0' });
    expect(report.config).toBeUndefined();
    expect(report.problems.map((p) => p.split(' ')[0])).toEqual(['AUTH_ACCESS_TTL', 'AUTH_LOG_LEVEL', 'AUTH_HASH_CONCURRENCY', 'AUTH_STORE']);
    expect(() => loadConfig({ AUTH_ACCESS_TTL: 'soon', AUTH_STORE: 'sqlite' })).toThrow(/^AUTH_ACCESS_TTL must be a duration.*\nAUTH_STORE must be one of memory, redis/s);
  });

  test('rules between settings are checked together too', () => {
    const report = readConfig({ NODE_ENV: 'production' });
    expect(report.problems).toEqual([
      'AUTH_ISSUER is required when NODE_ENV=production',
      'AUTH_AUDIENCE is required when NODE_ENV=production',
      'AUTH_SIGNING_KEY_FILE is required when NODE_ENV=production (an ephemeral key would log everyone out on restart)',
      expect.stringMatching(/^NODE_ENV=production needs AUTH_TLS_CERT and AUTH_TLS_KEY/),
    ]);
  });

  test.each([
    { env: { AUTH_ACESS_TTL: '60' }, want: [{ variable: 'AUTH_ACESS_TTL', suggestion: 'AUTH_ACCESS_TTL' }] },
    { env: { AUTH_STORE_TIMEOUT_MS: '5' }, want: [{ variable: 'AUTH_STORE_TIMEOUT_MS', suggestion: undefined }] },
    { env: { AUTH_STORE: 'memory', OTHER_VAR: 'x', HOME: '/root' }, want: [] },
  ])('an AUTH_* variable that is no setting is reported, with the setting it resembles: $env', ({ env, want }) => {
    const report = readConfig(env);
    expect(report.config).toBeDefined();
    expect(report.unknown).toEqual(want);
  });

  test.each([
    ['900', 900_000],
    ['900s', 900_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['30d', 2_592_000_000],
    ['250ms', 250],
  ])('parseDurationMs(%p) = %p', (raw, want) => expect(parseDurationMs(raw)).toBe(want));

  test.each([
    [900_000, '15m'],
    [86_400_000, '1d'],
    [1500, '1500ms'],
    [0, '0s'],
  ])('formatDuration(%p) = %p', (ms, want) => expect(formatDuration(ms)).toBe(want));
});

describe('URLs as they are shown (check-config, errors)', () => {
  test.each([
    { url: 'redis://:hunter2@db:6379/1', want: 'redis://****@db:6379/1' },
    { url: 'postgres://app:p@ssw0rd@127.0.0.1:5432/auth', want: 'postgres://****@127.0.0.1:5432/auth' },
    { url: 'postgres://u:pa?ss@h/db', want: 'postgres://****@h/db' },
    { url: 'postgres://:s3cr/et@h/db', want: 'postgres://****@h/db' },
    { url: 'https://mailer.internal/reset?token=abc', want: 'https://mailer.internal/reset?****' },
    { url: 'https://mailer.internal/reset#frag', want: 'https://mailer.internal/reset?****' },
    { url: 'https://mailer.internal/reset', want: 'https://mailer.internal/reset' },
    { url: 'not a url:secret', want: '****' },
  ])('$url', ({ url, want }) => {
    expect(maskUrl(url)).toBe(want);
  });
});

describe('passkey settings', () => {
  test.each([
    { env: { AUTH_WEBAUTHN_RP_ID: 'example.com' }, origins: ['https://example.com'] },
    { env: { AUTH_WEBAUTHN_RP_ID: 'example.com', AUTH_WEBAUTHN_ORIGINS: 'https://app.example.com' }, origins: ['https://app.example.com'] },
    { env: { AUTH_WEBAUTHN_RP_ID: 'localhost', AUTH_WEBAUTHN_ORIGINS: 'http://localhost:8080' }, origins: ['http://localhost:8080'] },
    { env: {}, origins: [] },
  ])('$env: the origins used are $origins', ({ env, origins }) => {
    expect(loadConfig(env).webauthnOrigins).toEqual(origins);
  });
});
