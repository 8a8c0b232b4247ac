'use strict';
// The token calls on the memory-store service: calls/s against Health.Check, and server CPU per
// call against Health.Check's plus an allowance from the raw floors.
const grpc = require('@grpc/grpc-js');
const { PASSWORD } = require('./lib/service.js');
const { cpuFigure, cpuPerCall, cpuSeconds, dist, grpcFrame, h2loadAvailable, ratioFigure, viaH2, viaNode } = require('./lib/measure.js');

const { ValidateRequestSchema } = dist('gen/auth/v1/auth_pb.js');
const { SecureService } = dist('gen/auth/v1/secure_pb.js');
const { HealthCheckRequestSchema } = dist('gen/grpc/health/v1/health_pb.js');

/** Health.Check's calls/s on a service: the baseline of every calls/s figure of one service. */
function healthRate(service) {
  return h2loadAvailable ? viaH2(service.port, '/grpc.health.v1.Health/Check', grpcFrame(HealthCheckRequestSchema, { service: '' })) : viaNode(() => service.health.check({ service: '' }));
}

/** Validate and WhoAmI (a token seen before) in calls/s against Health.Check. */
async function throughputFigures(results, service, { token }) {
  const { auth, secure, port } = service;
  console.log('measuring Validate, token seen before ...');
  const validate = h2loadAvailable ? viaH2(port, '/auth.v1.AuthService/Validate', grpcFrame(ValidateRequestSchema, { accessToken: token })) : viaNode(() => auth.validate({ accessToken: token }));
  await ratioFigure(results, 'Validate, token seen before', 0.9, validate, healthRate(service));
  console.log('measuring WhoAmI through the interceptor ...');
  const bearer = new grpc.Metadata();
  bearer.set('authorization', `Bearer ${token}`);
  const whoAmI = h2loadAvailable ? viaH2(port, '/auth.v1.SecureService/WhoAmI', grpcFrame(SecureService.method.whoAmI.input, {}), { authorization: `Bearer ${token}` }) : viaNode(() => secure.whoAmI({}, { metadata: bearer }));
  await ratioFigure(results, 'SecureService.WhoAmI through the interceptor, token seen before', 0.85, whoAmI, healthRate(service));
}

/** Server CPU per call of Validate (a new token each call), Refresh and IssueServiceToken. */
async function cpuFigures(results, service, { mint, loginAny }) {
  const { auth, server } = service;
  const { es256VerifyUs, es256SignUs, sha256Us } = results.floors;
  console.log('measuring Validate with a new token every call ...');
  let minted = 0;
  await cpuFigure(
    results,
    service,
    'Validate, a new token every call (ES256)',
    3000,
    async (count) => {
      const tokens = Array.from({ length: count }, () => mint(minted++));
      return cpuPerCall(server, count, (i) => auth.validate({ accessToken: tokens[i] }));
    },
    1.7 * es256VerifyUs,
  );
  console.log('measuring Refresh ...');
  await cpuFigure(
    results,
    service,
    'Refresh (memory store)',
    2048,
    async (count) => {
      // 32 sessions, each refreshed in its own sequence: every call presents the latest token.
      const chains = [];
      for (let i = 0; i < 32; i++) chains.push((await loginAny(i)).refreshToken);
      const before = cpuSeconds(server.pid);
      await Promise.all(
        chains.map(async (first) => {
          let current = first;
          for (let i = 0; i < count / 32; i++) current = (await auth.refresh({ refreshToken: current })).refreshToken;
        }),
      );
      return ((cpuSeconds(server.pid) - before) / count) * 1e6;
    },
    1.7 * (es256SignUs + sha256Us),
  );
  await serviceTokenFigures(results, service);
}

/** Server CPU per call of IssueServiceToken with a secret, and of ExchangeApiKey for the same account (BENCH_ONLY=apikeys runs only these). */
async function serviceTokenFigures(results, service) {
  const { auth, server } = service;
  const { es256SignUs, sha256Us } = results.floors;
  console.log('measuring IssueServiceToken with a secret ...');
  const adminToken = (await auth.login({ username: 'bench-admin', password: PASSWORD })).accessToken;
  const adminMetadata = new grpc.Metadata();
  adminMetadata.set('authorization', `Bearer ${adminToken}`);
  const account = await service.admin.createServiceAccount({ name: 'bench-reports', roles: ['reader'] }, { metadata: adminMetadata });
  await cpuFigure(
    results,
    service,
    'IssueServiceToken with a secret',
    2048,
    (count) => cpuPerCall(server, count, () => auth.issueServiceToken({ clientId: account.clientId, clientSecret: account.clientSecret })),
    1.7 * (es256SignUs + sha256Us),
  );

  // The same account's API key: an HMAC where IssueServiceToken has a SHA-256, the same signature.
  console.log('measuring ExchangeApiKey ...');
  const key = await service.admin.createServiceAccountApiKey({ serviceAccountId: account.clientId, name: 'bench', roles: ['reader'], expiresInSeconds: 86_400 }, { metadata: adminMetadata });
  await cpuFigure(
    results,
    service,
    'ExchangeApiKey (a service account\'s key)',
    2048,
    (count) => cpuPerCall(server, count, () => auth.exchangeApiKey({ apiKey: key.secret })),
    1.7 * (es256SignUs + sha256Us),
  );
}

module.exports = { healthRate, throughputFigures, cpuFigures, serviceTokenFigures };
