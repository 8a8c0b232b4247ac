#!/usr/bin/env node
/* eslint-disable no-console */
// `npm run bench:profile -- <scenario>`: runs the built service under `node --cpu-prof`, drives one
// scenario with the Node load generator, stops the service, and prints where the server's CPU
// went: self time by package and the heaviest functions. The raw profile stays in
// bench/results/<scenario>.cpuprofile (open it in Chrome DevTools for the call tree; not committed),
// the summary in bench/results/profile-<scenario>.txt.
// Scenarios: validate-new, validate-seen, whoami-seen, refresh, service-token, api-key, login, health;
// and floor- before validate-new, refresh, service-token, api-key, login or health: the same calls on the floor
// server (floor-server.js, only the libraries' work), profiled instead of the service.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const os = require('node:os');
const argon2 = require('@node-rs/argon2');
const jwt = require('jsonwebtoken');
const { startFloor } = require('./calls.js');
const { ARGON2ID } = require('./floors.js');
const { nodeLoad, startService, PASSWORD } = require('./lib/service.js');

const ROOT = path.join(__dirname, '..');

const scenario = process.argv[2] ?? 'validate-new';
const CALLS_ASKED = Number(process.env.PROFILE_CALLS ?? 20000);
// A login is an argon2id hash: 2,000 of them are enough (start-up is then under a tenth of the
// main thread's time), and every per-call figure divides by the calls made.
const CALLS = scenario.endsWith('login') ? Math.min(CALLS_ASKED, 2000) : CALLS_ASKED;

async function main() {
  const onFloor = scenario.startsWith('floor-');
  const profileArgs = (dir) => [...(process.env.PROFILE_NODE_ARGS ?? '').split(' ').filter(Boolean), '--cpu-prof', `--cpu-prof-dir=${dir}`];
  // An admin from a users file, for the service account of the service-token scenarios.
  const usersFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'profile-users-')), 'users');
  fs.writeFileSync(usersFile, `bench-admin:${await argon2.hash(PASSWORD, ARGON2ID)}:admin\n`);
  const service = await startService({
    env: { AUTH_LOG_LEVEL: process.env.AUTH_LOG_LEVEL ?? 'info', AUTH_USERS_FILE: usersFile },
    nodeArgs: onFloor ? () => [] : profileArgs,
  });
  const floorDir = fs.mkdtempSync(path.join(os.tmpdir(), 'profile-floor-'));
  const floor = onFloor ? await startFloor(service, { nodeArgs: profileArgs(floorDir) }) : undefined;
  const { key, secure } = service;
  const dir = onFloor ? floorDir : service.dir;
  // The floor answers the same calls: its clients stand in for the service's.
  const auth = onFloor ? floor.auth : service.auth;
  const health = onFloor ? floor.health : service.health;

  const accounts = Array.from({ length: 16 }, (_, i) => `prof${i}`);
  for (const username of accounts) await service.auth.register({ username, password: PASSWORD });
  const first = await service.auth.login({ username: accounts[0], password: PASSWORD });
  const { sid, sub } = jwt.decode(first.accessToken);
  const now = () => Math.floor(Date.now() / 1000);
  // Signed as the service signs: low-S only, for the user who logged in (an active token).
  const { lowS } = require(path.join(__dirname, '..', 'dist', 'src', 'core', 'access-token.js'));
  const mint = (i) =>
    lowS(
      jwt.sign({ iss: 'urn:grpc-auth:dev', aud: 'urn:grpc-auth:services', sub, username: 'prof0', roles: [], sid, jti: `j${i}`, iat: now(), exp: now() + 900 }, key.signKey, {
        algorithm: 'ES256',
        header: { alg: 'ES256', typ: 'at+jwt', kid: key.kid },
      }),
    );
  const bearer = new grpc.Metadata();
  bearer.set('authorization', `Bearer ${first.accessToken}`);

  let calls;
  switch (scenario.replace(/^floor-/, '')) {
    case 'service-token': {
      const admin = new grpc.Metadata();
      admin.set('authorization', `Bearer ${(await service.auth.login({ username: 'bench-admin', password: PASSWORD })).accessToken}`);
      const account = await service.admin.createServiceAccount({ name: 'profile', roles: ['reader'] }, { metadata: admin });
      calls = () => nodeLoad(() => auth.issueServiceToken({ clientId: account.clientId, clientSecret: account.clientSecret }), { count: CALLS, seconds: 300 });
      break;
    }
    case 'api-key': {
      const admin = new grpc.Metadata();
      admin.set('authorization', `Bearer ${(await service.auth.login({ username: 'bench-admin', password: PASSWORD })).accessToken}`);
      const account = await service.admin.createServiceAccount({ name: 'profile', roles: ['reader'] }, { metadata: admin });
      const key = await service.admin.createServiceAccountApiKey({ serviceAccountId: account.clientId, name: 'profile', roles: ['reader'], expiresInSeconds: 86_400 }, { metadata: admin });
      calls = () => nodeLoad(() => auth.exchangeApiKey({ apiKey: key.secret }), { count: CALLS, seconds: 300 });
      break;
    }
    case 'health':
      calls = () => nodeLoad(() => health.check({ service: '' }), { count: CALLS, seconds: 300 });
      break;
    case 'validate-seen':
      calls = () => nodeLoad(() => auth.validate({ accessToken: first.accessToken }), { count: CALLS, seconds: 300 });
      break;
    case 'whoami-seen':
      calls = () => nodeLoad(() => secure.whoAmI({}, { metadata: bearer }), { count: CALLS, seconds: 300 });
      break;
    case 'validate-new': {
      const tokens = Array.from({ length: CALLS }, (_, i) => mint(i));
      calls = () => nodeLoad((i) => auth.validate({ accessToken: tokens[i] }), { count: CALLS, seconds: 300 });
      break;
    }
    case 'refresh': {
      const chains = [];
      for (let i = 0; i < 32; i++) chains.push((await service.auth.login({ username: accounts[i % accounts.length], password: PASSWORD })).refreshToken);
      calls = () =>
        Promise.all(
          chains.map(async (token) => {
            for (let i = 0; i < CALLS / 32; i++) token = (await auth.refresh({ refreshToken: token })).refreshToken;
          }),
        );
      break;
    }
    case 'login':
      calls = () => nodeLoad((i) => auth.login({ username: accounts[i % accounts.length], password: PASSWORD }), { concurrency: 8, count: CALLS, seconds: 300 });
      break;
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
  const t0 = Date.now();
  await calls();
  console.log(`${scenario}: ${CALLS} calls in ${Date.now() - t0} ms`);
  if (floor) await floor.stop();
  await service.stop();

  const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  const outDir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const saved = path.join(outDir, `${scenario}.cpuprofile`);
  const profile = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  fs.writeFileSync(saved, JSON.stringify({ ...profile, calls: CALLS }));
  summarise(profile, saved, CALLS);
}

const frameName = (callFrame) => `${callFrame.functionName || '(anonymous)'} ${callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${callFrame.lineNumber + 1}`;

/** Self time (µs) by function name, leaving out idle time. */
function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const times = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const { callFrame } = byId.get(profile.samples[i]);
    if (callFrame.functionName === '(idle)') continue;
    const name = frameName(callFrame);
    times.set(name, (times.get(name) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  return times;
}

/** Self time by package and by function, leaving out idle time. */
function summarise(profile, saved, calls) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const groupOf = (url, name) => {
    if (name === '(idle)' || name === '(program)' || name === '(garbage collector)') return name;
    const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (nm) return nm[1];
    if (url.includes('/dist/src/')) return 'service (dist/src)';
    if (url.includes('/dist/gen/')) return 'generated code';
    if (url.startsWith('node:')) return url.split('/')[0].replace(/^node:/, 'node:');
    return url === '' ? '(native)' : url;
  };
  const groups = new Map();
  const functions = new Map();
  let busy = 0;
  for (const [id, us] of self) {
    const { callFrame } = byId.get(id);
    const group = groupOf(callFrame.url, callFrame.functionName);
    if (group === '(idle)') continue;
    busy += us;
    groups.set(group, (groups.get(group) ?? 0) + us);
    const name = frameName(callFrame);
    functions.set(name, (functions.get(name) ?? 0) + us);
  }
  const lines = [];
  const print = (line) => {
    console.log(line);
    lines.push(line);
  };
  const pct = (us) => `${(us / calls).toFixed(1).padStart(6)} µs/call ${((100 * us) / busy).toFixed(1).padStart(5)} %`;
  print(`${scenario}: ${calls} calls; command: npm run bench:profile -- ${scenario}`);
  print(`main thread busy: ${(busy / 1000).toFixed(0)} ms, ${(busy / calls).toFixed(1)} µs per call (start-up and fixtures included); profile: ${path.relative(ROOT, saved)}`);
  print('\nself time by package:');
  for (const [g, us] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 15)) print(`  ${pct(us)}  ${g}`);
  print('\nheaviest functions (self time):');
  for (const [f, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, 30)) print(`  ${pct(us)}  ${f}`);
  // Against the baseline: where this scenario spends more per call than Health/Check does.
  const baseline = scenario.startsWith('floor-') ? 'floor-health' : 'health';
  const healthFile = path.join(path.dirname(saved), `${baseline}.cpuprofile`);
  if (scenario !== baseline && fs.existsSync(healthFile)) {
    const health = JSON.parse(fs.readFileSync(healthFile, 'utf8'));
    const healthCalls = health.calls ?? 20000;
    const base = selfTimes(health);
    print(`\nmore than in Health/Check (µs per call; from ${path.relative(ROOT, healthFile)}, ${healthCalls} calls):`);
    const rows = [...functions].map(([name, us]) => [name, us / calls - (base.get(name) ?? 0) / healthCalls]).sort((a, b) => b[1] - a[1]);
    for (const [name, us] of rows.slice(0, 25)) print(`  ${us.toFixed(1).padStart(6)} µs/call  ${name}`);
  }
  fs.writeFileSync(path.join(path.dirname(saved), `profile-${scenario}.txt`), `${lines.join('\n')}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
