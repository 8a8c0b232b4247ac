'use strict';
// The accounts, sessions and tokens the figures call with.
const jwt = require('jsonwebtoken');
const { PASSWORD } = require('./lib/service.js');
const { dist, grpcFrame, h2loadAvailable, h2load, nodeLoad, SECONDS } = require('./lib/measure.js');

const { ValidateRequestSchema } = dist('gen/auth/v1/auth_pb.js');

/**
 * On the main (memory-store) service: 16 login accounts, a session of 'bench' and its access
 * token, 20 more of its sessions, and `mint(i)`: a fresh access token of one of them, signed as
 * the service signs. Both kinds of token are checked active, so a figure measures the path it names.
 */
async function serviceFixtures(service) {
  const { auth, key } = service;
  await auth.register({ username: 'bench', password: PASSWORD });
  // Logins in flight count against their account (5 at most before back-off), so the login
  // figures spread over 16 accounts, as many clients would.
  const accounts = Array.from({ length: 16 }, (_, i) => `bench${i}`);
  for (const username of accounts) await auth.register({ username, password: PASSWORD });
  const loginAny = (i) => auth.login({ username: accounts[i % accounts.length], password: PASSWORD });
  const login = await auth.login({ username: 'bench', password: PASSWORD });
  const token = login.accessToken;
  const sessionIds = [];
  const benchUserId = jwt.decode(token).sub;
  for (let i = 0; i < 20; i++) {
    const t = await auth.login({ username: 'bench', password: PASSWORD });
    sessionIds.push(jwt.decode(t.accessToken).sid);
  }
  // Signed as the service signs: low-S only (a high-S ES256 signature is refused as malformed).
  const { lowS } = dist('src/core/access-token.js');
  const mint = (i) =>
    lowS(jwt.sign(
      { iss: 'urn:grpc-auth:dev', aud: 'urn:grpc-auth:services', sub: benchUserId, username: 'bench', roles: [], sid: sessionIds[i % sessionIds.length], jti: `j${i}`, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 900 },
      key.signKey,
      { algorithm: 'ES256', keyid: key.kid, header: { alg: 'ES256', typ: 'at+jwt', kid: key.kid } },
    ));

  for (const [name, t] of [['login', token], ['minted', mint(1e9)]]) {
    const answer = await auth.validate({ accessToken: t });
    if (!answer.active) throw new Error(`the ${name} benchmark token is not active: ${answer.reason}`);
  }
  return { loginAny, token, mint };
}

/** 32 users with a session each on a service (for the store comparisons). */
async function storeFixtures(s, prefix) {
  const sessions = [];
  for (let i = 0; i < 32; i++) {
    await s.auth.register({ username: `${prefix}${i}`, password: PASSWORD }).catch(() => {});
    sessions.push(await s.auth.login({ username: `${prefix}${i}`, password: PASSWORD }));
  }
  return { token: sessions[0].accessToken, sessions };
}

/** Validate calls/s of one token (seen before) on a service: h2load when present. */
function validateOn(s, token) {
  return h2loadAvailable ? async () => h2load(s.port, '/auth.v1.AuthService/Validate', grpcFrame(ValidateRequestSchema, { accessToken: token })) : async () => (await nodeLoad(() => s.auth.validate({ accessToken: token }), { seconds: SECONDS / 2 })).perSecond;
}

/** Refresh calls/s: the fixture's 32 sessions, each refreshed in its own sequence, for half a round. */
function refreshOn(s, fixture) {
  return async () => {
    const end = Date.now() + (SECONDS / 2) * 1000;
    let calls = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      fixture.sessions.map(async (session) => {
        while (Date.now() < end) {
          const next = await s.auth.refresh({ refreshToken: session.refreshToken });
          session.refreshToken = next.refreshToken;
          calls++;
        }
      }),
    );
    return calls / (Number(process.hrtime.bigint() - t0) / 1e9);
  };
}

/** Login calls/s: 8 of the fixture's users, each logging in its own sequence, for half a round. */
function loginOn(s, prefix) {
  return async () => {
    const end = Date.now() + (SECONDS / 2) * 1000;
    let calls = 0;
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        while (Date.now() < end) {
          await s.auth.login({ username: `${prefix}${w}`, password: PASSWORD });
          calls++;
        }
      }),
    );
    return calls / (Number(process.hrtime.bigint() - t0) / 1e9);
  };
}

module.exports = { serviceFixtures, storeFixtures, validateOn, refreshOn, loginOn };
