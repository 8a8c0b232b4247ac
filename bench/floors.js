'use strict';
// Raw floors, in this process: what each call's work costs at the least (ES256, SHA-256, argon2id).
const crypto = require('node:crypto');
const argon2 = require('@node-rs/argon2');
const { PASSWORD } = require('./lib/service.js');
const { dist, median, microbench, SECONDS } = require('./lib/measure.js');

// The service's own parameters (ARGON2ID_OWASP); 2 is argon2id.
const ARGON2ID = { algorithm: 2, ...dist('src/core/password-hasher.js').ARGON2ID_OWASP };

/** Fills `results.floors` with the microbenchmarks of the service's signing key and hasher settings. */
async function measureFloors(results, key) {
  const pub = key.verifyKey;
  const signInput = Buffer.from('x'.repeat(300));
  const sig = crypto.sign('sha256', signInput, { key: key.signKey, dsaEncoding: 'ieee-p1363' });
  results.floors.es256VerifyUs = microbench(() => crypto.verify('sha256', signInput, { key: pub, dsaEncoding: 'ieee-p1363' }, sig));
  results.floors.es256SignUs = microbench(() => crypto.sign('sha256', signInput, { key: key.signKey, dsaEncoding: 'ieee-p1363' }));
  results.floors.sha256Us = microbench(() => crypto.createHash('sha256').update('rt1_' + 'a'.repeat(64)).digest());
  const hashRuns = [];
  for (let i = 0; i < 7; i++) {
    const t0 = process.hrtime.bigint();
    await argon2.hash(PASSWORD, ARGON2ID);
    hashRuns.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  results.floors.argon2idMs = median(hashRuns);
  // Not a target's baseline, but what explains the Login figure: the hashing threads share the
  // machine's cores with each other, the service and the load generator.
  const parallelStart = process.hrtime.bigint();
  let parallelHashes = 0;
  await Promise.all(
    Array.from({ length: results.hashConcurrency }, async () => {
      while (Number(process.hrtime.bigint() - parallelStart) < SECONDS * 1e9) {
        await argon2.hash(PASSWORD, ARGON2ID);
        parallelHashes++;
      }
    }),
  );
  results.floors.argon2idParallelPerSecond = parallelHashes / (Number(process.hrtime.bigint() - parallelStart) / 1e9);
}

module.exports = { measureFloors, ARGON2ID };
