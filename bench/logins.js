'use strict';
// Logins: against the hashing capacity, with a second factor, and what a flood of hashing does to
// the calls beside it.
const argon2 = require('@node-rs/argon2');
const grpc = require('@grpc/grpc-js');
const { ARGON2ID } = require('./floors.js');
const { startFloor } = require('./calls.js');
const { PASSWORD } = require('./lib/service.js');
const { cpuSeconds, median, nodeLoad, ROUNDS, SECONDS, spread } = require('./lib/measure.js');

/** argon2id hashes/s (and hashes made) of `concurrency` hashes at a time in this process, for `seconds`: the service's hashing with nothing around it. */
async function hashingRate(concurrency, seconds) {
  const start = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
  let hashes = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (elapsed() < seconds) {
        await argon2.hash(PASSWORD, ARGON2ID);
        hashes++;
      }
    }),
  );
  return { perSecond: hashes / elapsed(), hashes };
}

/**
 * Login calls/s against the floor server's Login (bench/floor-server.js: a bare grpc-js server
 * with the same argon2id check, two at a time, and an ES256 token, nothing else), driven by the
 * same client in the same rounds, order turning each round; and both against the same argon2id
 * hashing alone, `hashConcurrency` at a time, with no server and no client. On a machine whose
 * cores the load generator shares, a login costs more than its hash wherever it is served: the
 * floor's ratio to hashing alone shows how much, and the service is held to 0.9 × the floor's
 * Login (its own work beyond the floor at most a tenth of the rate), with the server CPU per login
 * of each beside it.
 */
async function loginFigure(results, service, { loginAny }) {
  console.log('measuring Login ...');
  const floor = await startFloor(service);
  try {
    const ours = { rate: [], cpu: [] };
    const bare = { rate: [], cpu: [] };
    const hashing = { rate: [], cpu: [] };
    const measure = async (into, server, call) => {
      const before = cpuSeconds(server.pid);
      const { calls, perSecond } = await nodeLoad(call, { concurrency: 8, seconds: SECONDS });
      into.rate.push(perSecond);
      into.cpu.push(((cpuSeconds(server.pid) - before) / calls) * 1000);
    };
    const floorLogin = () => floor.auth.login({ username: 'floor', password: PASSWORD });
    if ((await floorLogin()).accessToken === '') throw new Error('the floor server did not log in');
    const steps = [
      () => measure(ours, service.server, loginAny),
      () => measure(bare, floor.server, floorLogin),
      async () => {
        const before = process.cpuUsage();
        const { perSecond, hashes } = await hashingRate(results.hashConcurrency, SECONDS);
        const used = process.cpuUsage(before);
        hashing.rate.push(perSecond);
        hashing.cpu.push((used.user + used.system) / 1000 / hashes);
      },
    ];
    for (let r = 0; r < ROUNDS; r++) for (const step of r % 2 === 0 ? steps : [...steps].reverse()) await step();
    const ratios = ours.rate.map((l, i) => l / bare.rate[i]);
    const ms = (xs) => `${median(xs).toFixed(1)} ms`;
    const toHashing = (xs) => median(xs.map((l, i) => l / hashing.rate[i])).toFixed(2);
    results.figures.push({
      name: `Login vs the floor server's Login (the same argon2id check, ${results.hashConcurrency} at a time, and an ES256 token)`,
      unit: 'calls/s',
      value: median(ours.rate),
      baseline: median(bare.rate),
      ratio: median(ratios),
      spread: spread(ratios),
      target: 0.9,
      met: median(ratios) >= 0.9,
      note: `against argon2id hashing alone (${median(hashing.rate).toFixed(0)}/s, no server, no client): Login ${toHashing(ours.rate)} ×, the floor's ${toHashing(bare.rate)} ×; CPU per login: the service ${ms(ours.cpu)}, the floor ${ms(bare.cpu)}, a bare hash ${ms(hashing.cpu)}`,
      login: { ours, floor: bare, hashing },
    });
  } finally {
    await floor.stop();
  }
}

/** Login while Register floods the hashing pool, and Validate while logins do: each against the same calls unloaded. */
async function contentionFigures(results, service, { loginAny, token }) {
  const { auth } = service;
  console.log('measuring Login while Register is flooded ...');
  const loginCalm = [];
  const loginBusy = [];
  let registered = 0;
  for (let r = 0; r < ROUNDS; r++) {
    loginCalm.push(await nodeLoad(loginAny, { concurrency: 8 }));
    let stop = false;
    const flood = Promise.all(
      Array.from({ length: 16 }, async () => {
        while (!stop) await auth.register({ username: `flood${registered++}`, password: PASSWORD }).catch(() => {});
      }),
    );
    loginBusy.push(await nodeLoad(loginAny, { concurrency: 8 }));
    stop = true;
    await flood;
  }
  const loginRateRatio = median(loginBusy.map((b, i) => b.perSecond / loginCalm[i].perSecond));
  const loginP99Ratio = median(loginBusy.map((b, i) => b.p99 / loginCalm[i].p99));
  results.figures.push({ name: 'Login while Register is flooded: calls/s vs unloaded', unit: 'ratio', value: loginRateRatio, target: 0.5, met: loginRateRatio >= 0.5 });
  results.figures.push({ name: 'Login while Register is flooded: p99 vs unloaded p99', unit: 'ratio', value: loginP99Ratio, limit: 3, met: loginP99Ratio <= 3 });

  console.log('measuring Validate while logins saturate the hashing pool ...');
  const calm = [];
  const busy = [];
  for (let r = 0; r < ROUNDS; r++) {
    calm.push(await nodeLoad(() => auth.validate({ accessToken: token }), { concurrency: 16 }));
    let stop = false;
    const flood = Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        while (!stop) await loginAny(w).catch(() => {});
      }),
    );
    busy.push(await nodeLoad(() => auth.validate({ accessToken: token }), { concurrency: 16 }));
    stop = true;
    await flood;
  }
  const rateRatio = median(busy.map((b, i) => b.perSecond / calm[i].perSecond));
  const p99Ratio = median(busy.map((b, i) => b.p99 / calm[i].p99));
  results.figures.push({ name: 'Validate while logins saturate the hashing pool: calls/s vs unloaded', unit: 'ratio', value: rateRatio, target: 0.5, met: rateRatio >= 0.5 });
  results.figures.push({ name: 'Validate while logins saturate the hashing pool: p99 vs unloaded p99', unit: 'ratio', value: p99Ratio, limit: 3, met: p99Ratio <= 3 });
}

/**
 * Login with a second factor (Login, then CompleteLogin with a TOTP code) next to Login without,
 * on the same service in the same rounds (ABBA): logins per second and server CPU per login. A
 * TOTP code is accepted once per user and 30-second step, so every second-factor login of the
 * run is a different user's (`perRound` × ROUNDS users, enrolled first through the API).
 */
async function mfaLoginFigures(results, service, { loginAny }, perRound) {
  const { TOTP, Secret } = require('otpauth');
  const { auth, account, server } = service;
  const users = [];
  console.log(`enrolling ${perRound * ROUNDS} users in TOTP ...`);
  await nodeLoad(
    async (i) => {
      const username = `bench-mfa${i}`;
      await auth.register({ username, password: PASSWORD });
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${(await auth.login({ username, password: PASSWORD })).accessToken}`);
      const enrolled = await account.enrollTotp({}, { metadata });
      const totp = new TOTP({ secret: Secret.fromBase32(enrolled.secret) });
      const now = Date.now();
      await account.confirmTotp({ enrollmentId: enrolled.enrollmentId, code: totp.generate({ timestamp: now }), password: PASSWORD }, { metadata });
      users[i] = { username, totp, spentStep: Math.floor(now / 30_000) };
    },
    { count: perRound * ROUNDS, concurrency: 8, seconds: 600 },
  );
  if (users.filter(Boolean).length !== perRound * ROUNDS) throw new Error('not every bench user could enroll');
  let next = 0;
  const mfaLogin = async () => {
    const user = users[next++];
    const first = await auth.login({ username: user.username, password: PASSWORD });
    if (!first.mfaRequired) throw new Error('the bench user has no second factor');
    // The step after the confirming one when that is still now (one step ahead is accepted).
    const step = Math.max(Math.floor(Date.now() / 30_000), user.spentStep + 1);
    const done = await auth.completeLogin({ mfaToken: first.mfaToken, code: user.totp.generate({ timestamp: step * 30_000 }) });
    if (done.accessToken === '') throw new Error('CompleteLogin gave no token');
  };
  const measure = async (call) => {
    const before = cpuSeconds(server.pid);
    const { calls, perSecond } = await nodeLoad(call, { count: perRound, concurrency: 8, seconds: 600 });
    return { perSecond, cpuUs: ((cpuSeconds(server.pid) - before) / calls) * 1e6 };
  };
  const plain = [];
  const mfa = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      plain.push(await measure(loginAny));
      mfa.push(await measure(mfaLogin));
    } else {
      mfa.push(await measure(mfaLogin));
      plain.push(await measure(loginAny));
    }
  }
  const rates = mfa.map((m, i) => m.perSecond / plain[i].perSecond);
  results.figures.push({
    name: 'Login with a second factor (Login + CompleteLogin) vs Login without: logins/s',
    unit: 'logins/s',
    value: median(mfa.map((m) => m.perSecond)),
    baseline: median(plain.map((m) => m.perSecond)),
    ratio: median(rates),
    spread: spread(rates),
    target: 0.8,
    met: median(rates) >= 0.8,
  });
  const cpu = mfa.map((m) => m.cpuUs);
  const cpuBase = median(plain.map((m) => m.cpuUs));
  results.figures.push({
    name: 'Login with a second factor (Login + CompleteLogin): server CPU per login',
    unit: 'µs server CPU per login',
    value: median(cpu),
    baseline: cpuBase,
    limit: 1.25 * cpuBase,
    spread: spread(cpu),
    met: median(cpu) <= 1.25 * cpuBase,
  });
}

module.exports = { loginFigure, contentionFigures, mfaLoginFigures };
