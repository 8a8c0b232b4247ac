'use strict';
// The token calls on the memory-store service: calls/s against Health.Check, and server CPU per
// call against the floor server's (floor-server.js) for the same call in the same rounds.
const { spawn } = require('node:child_process');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { PASSWORD, freePort, listening, stopChild, waitForHealth } = require('./lib/service.js');
const { cpuPerCall, cpuSeconds, dist, grpcFrame, h2loadAvailable, median, ratioFigure, ROUNDS, spread, viaH2, viaNode } = require('./lib/measure.js');

/**
 * Rounds of a CPU-per-call figure: 9 at the default BENCH_ROUNDS of 5 (they took 5): each round's
 * limit is the difference of two of the floor server's measurements, times 1.7, the noisiest of
 * any figure (the rounds of one IssueServiceToken figure ranged 0.69-1.30).
 */
const FLOOR_ROUNDS = 2 * ROUNDS - 1;
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

/**
 * The floor server (floor-server.js) beside `service`: a bare grpc-js server doing only the crypto
 * each call needs, with the service's own signing key, on a free port.
 */
async function startFloor(service, { nodeArgs = [] } = {}) {
  const { AuthService } = dist('gen/auth/v1/auth_pb.js');
  const { Health } = dist('gen/grpc/health/v1/health_pb.js');
  const { createClient } = dist('src/grpc/client.js');
  const port = await freePort();
  const server = spawn(process.execPath, [...nodeArgs, path.join(__dirname, 'floor-server.js')], { env: { PATH: process.env.PATH, PORT: String(port), KEY_FILE: path.join(service.dir, 'key.pem'), PASSWORD, HASH_CONCURRENCY: String(service.hashConcurrency) }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const kill = () => server.kill('SIGKILL');
  process.on('exit', kill);
  await listening(server, 'the floor server');
  const auth = createClient(AuthService, `127.0.0.1:${port}`);
  const health = createClient(Health, `127.0.0.1:${port}`);
  await waitForHealth(health);
  return {
    server,
    auth,
    health,
    /** The median µs its Refreshes spent making their refresh token since the last ask (floor-server.js). */
    tokenWork: () =>
      new Promise((resolve, reject) => {
        const settle = (action) => {
          clearTimeout(timer);
          server.off('message', answered);
          server.off('exit', exited);
          action();
        };
        const answered = ({ calls, medianNs }) => settle(() => (calls === 0 ? reject(new Error('the floor server made no refresh token')) : resolve(medianNs / 1000)));
        const exited = () => settle(() => reject(new Error('the floor server exited before it said what its refresh tokens cost')));
        const timer = setTimeout(() => settle(() => reject(new Error('the floor server did not say what its refresh tokens cost within 10 s'))), 10_000);
        server.once('message', answered);
        server.once('exit', exited);
        server.send('token-work');
      }),
    /** Stops the floor server; resolves when it has exited (and written a --cpu-prof profile). */
    async stop() {
      auth.close();
      health.close();
      await stopChild(server);
      process.removeListener('exit', kill);
    },
  };
}

/**
 * A CPU-per-call figure whose allowance is measured inside a busy server: in each round (ABBA
 * order) the service's call and its Health/Check, and the floor server's same call and its
 * Health/Check. The floor's call less its Health/Check is what the libraries' work on the call
 * (ES256, hashing, jsonwebtoken) costs in a server under load; the target is the service's
 * Health/Check plus 1.7 × that, as it was with an idle microbenchmark in its place (which ES256
 * alone could not meet inside a busy server: bench/results/profile-floor-*.txt). Work the floor
 * does for the service's own design rather than for the libraries (`once`: Refresh's token) is
 * taken out of that and added back once.
 */
async function floorFigure(results, service, floor, name, count, ours, floors, { once } = {}) {
  const value = [];
  const health = [];
  const floorCall = [];
  const floorHealth = [];
  // `once`: the µs a call of the floor's spent on work of the service's design rather than the
  // libraries' (Refresh's token), asked right after the floor's call; counted once, not 1.7 times.
  const designed = [];
  const checkHealth = (server, client) => cpuPerCall(server, count, () => client.check({ service: '' }));
  const steps = [
    async () => value.push(await ours(count)),
    async () => health.push(await checkHealth(service.server, service.health)),
    async () => {
      floorCall.push(await cpuPerCall(floor.server, count, floors));
      designed.push(once ? await once() : 0);
    },
    async () => floorHealth.push(await checkHealth(floor.server, floor.health)),
  ];
  for (let r = 0; r < FLOOR_ROUNDS; r++) for (const step of r % 2 === 0 ? steps : [...steps].reverse()) await step();
  const base = median(health);
  const libraries = median(floorCall.map((c, i) => c - floorHealth[i] - designed[i]));
  const design = median(designed);
  const limit = base + 1.7 * libraries + design;
  // Met or not is judged round by round: each round's four measurements are seconds apart, so a
  // machine that slows down for a while (a shared VM does) moves the call and its limit together,
  // where medians taken apart could pair a slow round of one with a fast round of the other.
  const perRound = value.map((v, i) => v / (health[i] + 1.7 * (floorCall[i] - floorHealth[i] - designed[i]) + designed[i]));
  results.figures.push({
    name,
    unit: 'µs server CPU per call',
    value: median(value),
    baseline: base,
    baselineName: `floor server: the call ${median(floorCall).toFixed(1)}, Health/Check ${median(floorHealth).toFixed(1)}${once ? `, its refresh token ${design.toFixed(1)}` : ''}; this service's Health/Check`,
    floor: { call: median(floorCall), health: median(floorHealth), libraries, ...(once ? { design } : {}) },
    limit,
    limitNote: once
      ? `Health/Check + 1.7 × ${libraries.toFixed(1)}, the libraries' work in a busy server, + ${design.toFixed(1)}, the refresh token's construction, once`
      : `Health/Check + 1.7 × ${libraries.toFixed(1)}, the libraries' work in a busy server`,
    spread: spread(value),
    // Each round's call ÷ that round's limit: judged by their median.
    perRound,
    met: median(perRound) <= 1,
  });
}

/** Server CPU per call of Validate (a new token each call), Refresh and IssueServiceToken, each against the floor server. */
async function cpuFigures(results, service, { mint, loginAny }) {
  const { auth, server } = service;
  const floor = await startFloor(service);
  try {
    console.log('measuring Validate with a new token every call ...');
    let minted = 0;
    let floorMinted = 0;
    const fresh = (count, from) => Array.from({ length: count }, () => mint(from()));
    await floorFigure(
      results,
      service,
      floor,
      'Validate, a new token every call (ES256)',
      6000,
      async (count) => {
        const tokens = fresh(count, () => minted++);
        return cpuPerCall(server, count, (i) => auth.validate({ accessToken: tokens[i] }));
      },
      // The floor verifies tokens it has not seen either (it remembers none).
      await (async (tokens) => {
        // A token the floor does not accept would cost it less: every one must be active there.
        if (!(await floor.auth.validate({ accessToken: tokens[0] })).active) throw new Error('the floor server does not accept the minted tokens');
        return (i) => floor.auth.validate({ accessToken: tokens[i % tokens.length] });
      })(fresh(6000, () => 1e8 + floorMinted++)),
    );
    console.log('measuring Refresh ...');
    const presented = (await loginAny(0)).refreshToken;
    await floorFigure(
      results,
      service,
      floor,
      'Refresh (memory store)',
      4096,
      await (async (chains) => {
        // 32 sessions, each refreshed in its own sequence through every round: every call presents
        // the latest token. They are made once, before the figure: 32 logins before each
        // measurement left their garbage to be collected in the refreshes' CPU.
        for (let i = 0; i < 32; i++) chains.push((await loginAny(i)).refreshToken);
        // The calls are counted across the sequences, as the load generator counts them (nodeLoad):
        // a fixed share each would leave the slowest sequences running alone at the end, fewer
        // calls in flight costing more each.
        return async (count) => {
          let started = 0;
          const before = cpuSeconds(server.pid);
          await Promise.all(
            chains.map(async (_first, c) => {
              while (started < count) {
                started++;
                chains[c] = (await auth.refresh({ refreshToken: chains[c] })).refreshToken;
              }
            }),
          );
          return ((cpuSeconds(server.pid) - before) / count) * 1e6;
        };
      })([]),
      () => floor.auth.refresh({ refreshToken: presented }),
      { once: () => floor.tokenWork() },
    );
    await serviceTokenFigures(results, service, floor);
  } finally {
    await floor.stop();
  }
}

/** Server CPU per call of IssueServiceToken with a secret, and of ExchangeApiKey for the same account (BENCH_ONLY=apikeys runs only these). */
async function serviceTokenFigures(results, service, sharedFloor) {
  const { auth, server } = service;
  const floor = sharedFloor ?? (await startFloor(service));
  try {
    console.log('measuring IssueServiceToken with a secret ...');
    const adminToken = (await auth.login({ username: 'bench-admin', password: PASSWORD })).accessToken;
    const adminMetadata = new grpc.Metadata();
    adminMetadata.set('authorization', `Bearer ${adminToken}`);
    const account = await service.admin.createServiceAccount({ name: 'bench-reports', roles: ['reader'] }, { metadata: adminMetadata });
    const issue = { clientId: account.clientId, clientSecret: account.clientSecret };
    await floorFigure(
      results,
      service,
      floor,
      'IssueServiceToken with a secret',
      4096,
      (count) => cpuPerCall(server, count, () => auth.issueServiceToken(issue)),
      () => floor.auth.issueServiceToken(issue),
    );

    // The same account's API key: an HMAC where IssueServiceToken has a SHA-256, the same signature.
    console.log('measuring ExchangeApiKey ...');
    const key = await service.admin.createServiceAccountApiKey({ serviceAccountId: account.clientId, name: 'bench', roles: ['reader'], expiresInSeconds: 86_400 }, { metadata: adminMetadata });
    await floorFigure(
      results,
      service,
      floor,
      'ExchangeApiKey (a service account\'s key)',
      4096,
      (count) => cpuPerCall(server, count, () => auth.exchangeApiKey({ apiKey: key.secret })),
      () => floor.auth.exchangeApiKey({ apiKey: key.secret }),
    );
  } finally {
    if (!sharedFloor) await floor.stop();
  }
}

module.exports = { healthRate, throughputFigures, cpuFigures, serviceTokenFigures, startFloor };
