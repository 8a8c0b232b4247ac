'use strict';
// A passkey sign-in (StartPasskeyLogin + FinishPasskeyLogin) next to a password Login: server CPU
// per sign-in, in the same rounds (ABBA). The authenticator is the tests' own
// (test/helpers/authenticator.ts), compiled with swc as jest does: one implementation of the bytes.
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { PASSWORD } = require('./lib/service.js');
const { cpuSeconds, median, nodeLoad, ROUNDS, spread } = require('./lib/measure.js');

/** test/helpers/authenticator.ts as a CommonJS module. */
function softAuthenticator() {
  const file = path.join(__dirname, '..', 'test', 'helpers', 'authenticator.ts');
  const { code } = require('@swc/core').transformSync(fs.readFileSync(file, 'utf8'), { filename: file, jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } });
  const m = new Module(file);
  m.paths = Module._nodeModulePaths(path.dirname(file));
  m._compile(code, file);
  return m.exports.SoftAuthenticator;
}

const ORIGIN = 'https://bench.example';

/** The service must run with AUTH_WEBAUTHN_RP_ID=bench.example (run.js starts it so). */
async function passkeyLoginFigures(results, service, { loginAny }, users) {
  const SoftAuthenticator = softAuthenticator();
  const { auth, account, server } = service;
  console.log(`registering a passkey for each of ${users} users ...`);
  const devices = [];
  await nodeLoad(
    async (i) => {
      const username = `bench-passkey${i}`;
      await auth.register({ username, password: PASSWORD });
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${(await auth.login({ username, password: PASSWORD })).accessToken}`);
      const device = new SoftAuthenticator(ORIGIN);
      const started = await account.startPasskeyRegistration({}, { metadata });
      await account.finishPasskeyRegistration({ ceremonyId: started.ceremonyId, responseJson: device.create(started.optionsJson).json, name: 'bench' }, { metadata });
      devices[i] = device;
    },
    { count: users, concurrency: 8, seconds: 600 },
  );
  if (devices.filter(Boolean).length !== users) throw new Error('not every bench user got a passkey');
  let next = 0;
  // Username-less, as a browser's passkey autofill signs in; each call a user's own passkey.
  const passkeyLogin = async () => {
    const device = devices[next++ % users];
    const started = await auth.startPasskeyLogin({ username: '' });
    const done = await auth.finishPasskeyLogin({ ceremonyId: started.ceremonyId, responseJson: device.get(started.optionsJson, {}, device.credentials[0]) });
    if (done.accessToken === '') throw new Error('FinishPasskeyLogin gave no token');
  };
  const measure = async (call) => {
    const before = cpuSeconds(server.pid);
    const { calls, perSecond } = await nodeLoad(call, { count: 200, concurrency: 8, seconds: 600 });
    return { perSecond, cpuUs: ((cpuSeconds(server.pid) - before) / calls) * 1e6 };
  };
  const plain = [];
  const passkey = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [[plain, loginAny], [passkey, passkeyLogin]] : [[passkey, passkeyLogin], [plain, loginAny]];
    for (const [into, call] of order) into.push(await measure(call));
  }
  const cpu = passkey.map((m) => m.cpuUs);
  const base = plain.map((m) => m.cpuUs);
  results.figures.push({
    name: 'Passkey sign-in (StartPasskeyLogin + FinishPasskeyLogin) vs password Login: server CPU per sign-in',
    unit: 'µs server CPU per sign-in',
    value: median(cpu),
    baseline: median(base),
    ratio: median(cpu) / median(base),
    spread: spread(cpu.map((c, i) => c / base[i])),
    // No argon2id: a passkey sign-in should cost well under a password's hash.
    limit: median(base),
    met: median(cpu) <= median(base),
  });
  results.figures.push({
    name: 'Passkey sign-in vs password Login: sign-ins/s',
    unit: 'sign-ins/s',
    value: median(passkey.map((m) => m.perSecond)),
    baseline: median(plain.map((m) => m.perSecond)),
    ratio: median(passkey.map((m, i) => m.perSecond / plain[i].perSecond)),
    spread: spread(passkey.map((m, i) => m.perSecond / plain[i].perSecond)),
    // Without a password hash, a passkey sign-in should outpace a Login.
    target: 1,
    met: median(passkey.map((m, i) => m.perSecond / plain[i].perSecond)) >= 1,
  });
}

module.exports = { passkeyLoginFigures };
