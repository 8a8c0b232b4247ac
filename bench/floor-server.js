'use strict';
// The floor of the CPU-per-call figures: a bare grpc-js server with the service's codec
// (dist/src/grpc/bridge.js) and the same generated messages, whose handlers do only the work no
// implementation of these calls can skip with the project's fixed libraries (grpc-js, protobuf-es,
// jsonwebtoken) and node:crypto, and nothing else: no store, no session check, no claims beyond
// jsonwebtoken's own, no interceptors, no log line, no metrics. One exception: Refresh also makes
// the service's refresh token as the service's own module makes it (its design, not the
// libraries': bench/calls.js counts that part once, not 1.7 times).
//   Validate           jsonwebtoken's ES256 verify of the token (issuer, audience, expiry)
//   Refresh            a new ES256 access token; and the refresh token's construction, by the
//                      service's module for it (dist/src/core/refresh-token.js, the tag keys derived
//                      as the service derives them): the presented token read (its HMAC tag
//                      checked, its SHA-256), its successor made (32 random bytes, HMAC tag,
//                      SHA-256) and sealed under the presented token (SHA-256 key, AES-256-GCM) as
//                      a retry needs it. Each call's time in that construction is kept, and its
//                      median sent to bench/calls.js when it asks (an IPC message, 'token-work').
//   IssueServiceToken  SHA-256 of the secret compared in constant time, a new ES256 access token
//   ExchangeApiKey     HMAC-SHA-256 of the key compared in constant time, a new ES256 access token
//   Login              argon2id check of the password (the service's parameters, as many at a
//                      time as the service, the rest waiting), a new ES256 access token, 32 random bytes
//   Health.Check       SERVING
// Random bytes come from the service's pool (src/random.ts), as the service draws them.
// Measured in the same rounds as the service (bench/calls.js), it is what ES256 and the rest cost
// inside a busy server on this machine, rather than in an idle microbenchmark.
// Run by bench/calls.js as a child process: KEY_FILE (the service's signing key), PORT, PASSWORD
// (the one Login accepts), HASH_CONCURRENCY (the service's); prints "listening".
const crypto = require('node:crypto');
const path = require('node:path');
const { create } = require('@bufbuild/protobuf');
const grpc = require('@grpc/grpc-js');
const jwt = require('jsonwebtoken');
const argon2 = require('@node-rs/argon2');

const dist = (p) => require(path.join(__dirname, '..', 'dist', p));
const { serviceDefinition } = dist('src/grpc/bridge.js');
const { AuthService } = dist('gen/auth/v1/auth_pb.js');
const { Health } = dist('gen/grpc/health/v1/health_pb.js');
const { loadEcKeyFile, refreshTagKeys } = dist('src/core/keys.js');
const { OpaqueRefreshTokens } = dist('src/core/refresh-token.js');
const { systemRandom } = dist('src/random.js');

const key = loadEcKeyFile(process.env.KEY_FILE);
const refreshTokens = new OpaqueRefreshTokens(systemRandom, refreshTagKeys({ all: [key], signing: key }));
// Nanoseconds each Refresh spent making its refresh token, since bench/calls.js last asked. A
// synchronous stretch of a few tens of µs: its wall time is its CPU time unless the thread was
// preempted in it, which the median leaves out.
let tokenWork = [];
process.on('message', (message) => {
  if (message !== 'token-work') return;
  const sorted = tokenWork.sort((a, b) => a - b);
  process.send({ calls: sorted.length, medianNs: sorted.length === 0 ? 0 : sorted[sorted.length >> 1] });
  tokenWork = [];
});
// The channel alone does not keep the server running: it stops at SIGTERM as before.
process.channel?.unref();
const ISSUER = 'urn:grpc-auth:dev';
const AUDIENCE = 'urn:grpc-auth:services';
const secretHash = crypto.createHash('sha256').update('floor').digest();
const hmacKey = crypto.randomBytes(32);
// The service's own parameters (ARGON2ID_OWASP: 19 MiB, t=2, p=1); 2 is argon2id.
const passwordHash = argon2.hashSync(process.env.PASSWORD, { algorithm: 2, ...dist('src/core/password-hasher.js').ARGON2ID_OWASP });
const HASH_CONCURRENCY = Number(process.env.HASH_CONCURRENCY);

function sign(sub, sid) {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ iss: ISSUER, aud: AUDIENCE, sub, sid, roles: [], jti: systemRandom.bytes(16).toString('base64url'), iat: now, exp: now + 900 }, key.signKey, { algorithm: 'ES256', header: { alg: 'ES256', typ: 'at+jwt', kid: key.kid } });
}

// As many hashes at a time as the service runs (AUTH_HASH_CONCURRENCY), each on a libuv thread;
// the rest wait in order.
let running = 0;
const waiting = [];
function hashing(task) {
  return new Promise((resolve, reject) => {
    const start = () => {
      running++;
      task().then(resolve, reject).finally(() => {
        running--;
        waiting.shift()?.();
      });
    };
    if (running < HASH_CONCURRENCY) start();
    else waiting.push(start);
  });
}

const seconds = (s) => ({ seconds: BigInt(s), nanos: 0 });

const handlers = {
  validate(call, done) {
    try {
      const c = jwt.verify(call.request.accessToken, key.verifyKey, { algorithms: ['ES256'], issuer: ISSUER, audience: AUDIENCE });
      done(null, { active: true, userId: c.sub, username: c.username ?? '', roles: c.roles ?? [], sessionId: c.sid, tokenId: c.jti, issuedAt: seconds(c.iat), expiresAt: seconds(c.exp), subjectType: 1, amr: c.amr ?? [], authTime: seconds(c.auth_time ?? c.iat) });
    } catch {
      done(null, { active: false, reason: 1 });
    }
  },
  refresh(call, done) {
    // What the token's design costs whatever keeps the session: the store is left out.
    const token = call.request.refreshToken;
    const started = process.hrtime.bigint();
    const presented = refreshTokens.parse(token);
    if (!presented?.tagged) return done({ code: grpc.status.UNAUTHENTICATED, details: 'not a refresh token of the service' });
    const successor = refreshTokens.generate(presented.userId, presented.sessionId, presented.generation + 1);
    refreshTokens.seal(token, successor.token);
    tokenWork.push(Number(process.hrtime.bigint() - started));
    done(null, { accessToken: sign(presented.userId, presented.sessionId), tokenType: 'Bearer', expiresIn: 900, refreshToken: successor.token, refreshExpiresIn: 1209600 });
  },
  issueServiceToken(call, done) {
    crypto.timingSafeEqual(crypto.createHash('sha256').update(call.request.clientSecret).digest(), secretHash);
    done(null, { accessToken: sign(call.request.clientId, 'cred_floor'), tokenType: 'Bearer', expiresIn: 900 });
  },
  login(call, done) {
    hashing(() => argon2.verify(passwordHash, call.request.password)).then((ok) => {
      if (!ok) return done({ code: grpc.status.UNAUTHENTICATED, details: 'invalid credentials' });
      done(null, { accessToken: sign('usr_floor', 'ses_floor'), tokenType: 'Bearer', expiresIn: 900, refreshToken: `rt2_${systemRandom.bytes(32).toString('base64url')}`, refreshExpiresIn: 1209600 });
    }, done);
  },
  exchangeApiKey(call, done) {
    crypto.timingSafeEqual(crypto.createHmac('sha256', hmacKey).update(call.request.apiKey).digest(), secretHash);
    done(null, { accessToken: sign('sva_floor', 'gak_floor'), expiresIn: 900 });
  },
};

// Each answer made as the service makes it: a message of the method's output schema.
const answering = (schema, handler) => (call, done) => handler(call, (err, init) => done(err, init && create(schema, init)));
const server = new grpc.Server();
const auth = serviceDefinition(AuthService);
server.addService(
  Object.fromEntries(Object.keys(handlers).map((k) => [k, auth[k]])),
  Object.fromEntries(Object.entries(handlers).map(([k, h]) => [k, answering(AuthService.method[k].output, h)])),
);
server.addService({ check: serviceDefinition(Health).check }, { check: answering(Health.method.check.output, (_call, done) => done(null, { status: 1 })) });
server.bindAsync(`127.0.0.1:${process.env.PORT}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  console.log('listening');
});
process.on('SIGTERM', () => server.forceShutdown());
