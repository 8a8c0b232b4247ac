#!/usr/bin/env node
/* eslint-disable no-console */
// `npm run bench`: starts the service and measures each figure next to its baseline in the same
// run (machines here are shared and noisy, so only ratios within one run mean anything), then
// writes bench/results/latest.md and latest.json. Uses the built service in dist/.
//
// bench/lib: how to measure (rounds, load generators, ratio and CPU figures) and the service
// under measurement; floors.js the raw costs; fixtures.js the accounts and tokens; calls.js and
// logins.js the figures on the memory store; stores/ each store beside it; report.js the output.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const argon2 = require('@node-rs/argon2');
const { cpuFigures, serviceTokenFigures, throughputFigures } = require('./calls.js');
const { serviceFixtures } = require('./fixtures.js');
const { ARGON2ID, measureFloors } = require('./floors.js');
const { h2loadAvailable } = require('./lib/measure.js');
const { PASSWORD, startService } = require('./lib/service.js');
const { contentionFigures, loginFigure, mfaLoginFigures } = require('./logins.js');
const { passkeyLoginFigures } = require('./passkeys.js');
const { peerFigures } = require('./peers.js');
const { peersSection, write } = require('./report.js');
const { memoryStoreFigures } = require('./stores/memory.js');
const { postgresBin, postgresFigures } = require('./stores/postgres.js');
const { redisAvailable, redisFigures } = require('./stores/redis.js');

async function main() {
  const hashConcurrency = 2;
  // An admin from a users file, to create the service account the IssueServiceToken figure uses.
  const usersFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-users-')), 'users');
  fs.writeFileSync(usersFile, `bench-admin:${await argon2.hash(PASSWORD, ARGON2ID)}:admin\n`);
  // Registration limits off: the Register flood measures how hashing is shared, not the limits.
  const service = await startService({ env: { AUTH_HASH_CONCURRENCY: String(hashConcurrency), AUTH_USERS_FILE: usersFile, AUTH_REGISTER_PER_ADDRESS: '1000000', AUTH_REGISTER_PER_MINUTE: '1000000', AUTH_WEBAUTHN_RP_ID: 'bench.example', AUTH_PASSKEY_STARTS_PER_ADDRESS: '1000000', AUTH_API_KEY_SECRET: 'the bench service\'s API key secret, 32+ bytes' } });
  const results = { hashConcurrency, figures: [], floors: {}, generator: h2loadAvailable ? 'h2load (nghttp2) for calls/s figures; Node for CPU-per-call, latency and login figures' : 'Node (h2load not found)' };

  await measureFloors(results, service.key);
  const fixtures = await serviceFixtures(service);

  // BENCH_ONLY=mfa, =passkeys, =apikeys, =cpu (the CPU-per-call figures), =login, =contention, =postgres or =peers: only those figures, printed and not written (for working on them).
  const only = process.env.BENCH_ONLY;
  if (only === 'mfa' || only === 'postgres' || only === 'passkeys' || only === 'apikeys' || only === 'cpu' || only === 'login' || only === 'contention' || only === 'peers') {
    if (only === 'mfa') await mfaLoginFigures(results, service, fixtures, 200);
    else if (only === 'contention') await contentionFigures(results, service, fixtures);
    else if (only === 'peers') await peerFigures(results, service);
    else if (only === 'cpu') await cpuFigures(results, service, fixtures);
    else if (only === 'login') await loginFigure(results, service, fixtures);
    else if (only === 'apikeys') await serviceTokenFigures(results, service);
    else if (only === 'passkeys') await passkeyLoginFigures(results, service, fixtures, 200);
    else await postgresFigures(results, service);
    if (only === 'peers') console.log(peersSection(results));
    else console.log(JSON.stringify(results.figures, null, 1));
    await service.stop();
    return;
  }

  await throughputFigures(results, service, fixtures);
  await cpuFigures(results, service, fixtures);
  await loginFigure(results, service, fixtures);
  console.log('measuring Login with a second factor ...');
  await mfaLoginFigures(results, service, fixtures, 200);
  console.log('measuring a passkey sign-in ...');
  await passkeyLoginFigures(results, service, fixtures, 200);
  await contentionFigures(results, service, fixtures);

  // The same calls on the Redis and PostgreSQL stores, next to the memory store.
  if (redisAvailable()) await redisFigures(results, service);
  else console.log('redis-server not found: the Redis figures are skipped');
  if (postgresBin('initdb')) await postgresFigures(results, service);
  else console.log('PostgreSQL server programs not found (apt-get install -y postgresql): the PostgreSQL figures are skipped');
  // The peers a team would install instead, in the same run (bench/peers.js).
  await peerFigures(results, service);
  await service.stop();

  memoryStoreFigures(results);
  write(results);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
