'use strict';
// The peers a Node team would install instead, measured beside the service in the same run on the
// same machine, each over its own protocol (gRPC for the service, HTTP/1.1 for them) by the same
// load tool (h2load), with the same store where the peer has one:
//   - oidc-provider (bench/peers/oidc-provider.mjs, its in-memory adapter) against the service on
//     the memory store: the client_credentials grant next to IssueServiceToken, and token
//     introspection next to Validate;
//   - better-auth (bench/peers/better-auth.mjs, its PostgreSQL adapter) against the service on the
//     same PostgreSQL: email/password sign-in next to Login, the session check next to Validate;
//     once hashing as the service hashes (argon2id, 19 MiB, t=2), once with its own scrypt.
// Each round runs every contender of a group once, the order turning each round, so the machine's
// drift weighs on all alike. Reported per contender: calls/s, CPU per call (the server's process
// tree from /proc; the database's separately), and p50/p99 latency from h2load's per-request log.
// The peers live in bench/peers/ with their own lockfile (installed on first use), so that they
// never enter the package's dependency tree.
const { execFileSync, spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { toBinary } = require('@bufbuild/protobuf');
const grpc = require('@grpc/grpc-js');
const { PASSWORD, freePort, listening, startService, stopChild } = require('./lib/service.js');
const { dist, grpcFrame, h2loadAvailable, median, ROUNDS, SECONDS, spread } = require('./lib/measure.js');
const { postgresBin, startPostgres } = require('./stores/postgres.js');

const PEERS_DIR = path.join(__dirname, 'peers');
const CLIENT_SECRET = crypto.randomBytes(24).toString('base64url');

/** Installs bench/peers/ from its lockfile when it is not there yet. */
function installPeers() {
  if (fs.existsSync(path.join(PEERS_DIR, 'node_modules', 'oidc-provider')) && fs.existsSync(path.join(PEERS_DIR, 'node_modules', 'better-auth'))) return;
  console.log('installing the peers (bench/peers, npm ci) ...');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--silent'], { cwd: PEERS_DIR, stdio: 'inherit' });
}

/**
 * CPU seconds (user + system) of a process and all its descendants, from /proc: each living
 * one's own, plus what the ones that ended had used (a parent collects that when it reaps them:
 * PostgreSQL's connections come and go with the pools).
 */
function treeCpuSeconds(rootPid) {
  const parents = new Map();
  const cpu = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
      cpu.set(Number(entry), (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100); // utime stime cutime cstime, USER_HZ = 100
    } catch {
      // gone between the listing and the read
    }
  }
  let total = 0;
  for (const [pid, seconds] of cpu) {
    for (let p = pid; p > 1; p = parents.get(p) ?? 0) {
      if (p === rootPid) {
        total += seconds;
        break;
      }
    }
  }
  return total;
}

/** A peer's server in a child process on a free port; resolves when it prints "listening". */
async function startPeer(script, env) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(PEERS_DIR, script)], { env: { PATH: process.env.PATH, NODE_ENV: 'production', PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => child.kill('SIGKILL');
  process.on('exit', kill);
  try {
    await listening(child, script);
  } catch (err) {
    kill();
    throw err;
  }
  return {
    port,
    pid: child.pid,
    stop: async () => {
      await stopChild(child);
      process.removeListener('exit', kill);
    },
  };
}

/**
 * One h2load run: `inFlight` requests at a time for half a round. gRPC (h2c) as streams on one
 * connection per 8, HTTP/1.1 as one connection each. h2load sees HTTP statuses only, and a gRPC
 * error is an HTTP 200 without a message (its status is in the trailers), an inactive token a
 * short answer: so besides every status being 2xx, the run's answers must add up to at least
 * 98% of `answerBytes` (the size of a real answer, measured before) a call.
 */
function h2loadRun({ port, pathName, body, headers = {}, h1 = false, inFlight, answerBytes }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-peer-'));
  try {
    const log = path.join(tmp, 'log');
    const connections = h1 ? inFlight : Math.max(1, Math.ceil(inFlight / 8));
    const args = ['-D', `${Math.round(SECONDS * 500)}ms`, '-c', String(connections), '-m', h1 ? '1' : String(Math.ceil(inFlight / connections)), '-t', '1', `--log-file=${log}`];
    if (h1) args.push('--h1');
    if (body !== undefined) {
      fs.writeFileSync(path.join(tmp, 'body'), body);
      args.push('-d', path.join(tmp, 'body'));
    }
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
    args.push(`http://127.0.0.1:${port}${pathName}`);
    const out = execFileSync('h2load', args, { encoding: 'utf8', maxBuffer: 1 << 24 });
    const rows = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split('\t'));
    const bad = rows.filter((r) => !/^2/.test(r[1])).length;
    const done = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
    if (!done || bad > 0 || Number(done[2]) > 0 || Number(done[3]) > 0) throw new Error(`h2load ${pathName}: ${bad} answers not 2xx\n${out}`);
    // "traffic: … total, … headers …, 123.4KB (126345) data": the exact count is in parentheses.
    const data = /\((\d+)\) data/.exec(out);
    const dataBytes = data ? Number(data[1]) : 0;
    if (dataBytes < rows.length * answerBytes * 0.98) throw new Error(`h2load ${pathName}: ${dataBytes} bytes of answers for ${rows.length} calls, where a real answer has ${answerBytes}: some failed\n${out}`);
    const latencies = rows.map((r) => Number(r[2]) / 1000).sort((a, b) => a - b);
    const finished = /finished in ([\d.]+)(m?s)/.exec(out);
    const seconds = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
    return { calls: rows.length, perSecond: rows.length / seconds, p50: latencies[Math.floor(latencies.length / 2)], p99: latencies[Math.floor(latencies.length * 0.99)] };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** AuthService's method descriptor by its gRPC name ("IssueServiceToken"). */
const rpc = (method) => dist('gen/auth/v1/auth_pb.js').AuthService.method[method[0].toLowerCase() + method.slice(1)];

/** The size of a gRPC answer on the wire, as h2load counts it: the message and its 5-byte prefix. */
const grpcBytes = (schema, message) => 5 + toBinary(schema, message).length;

/** One contender's half-round: h2load against it, with its server's (and database's) CPU over the run. */
function measureOne(contender) {
  const before = treeCpuSeconds(contender.pid);
  const dbBefore = contender.dbPid ? treeCpuSeconds(contender.dbPid) : 0;
  const run = h2loadRun(contender.load);
  const cpuUs = ((treeCpuSeconds(contender.pid) - before) / run.calls) * 1e6;
  const dbCpuUs = contender.dbPid ? ((treeCpuSeconds(contender.dbPid) - dbBefore) / run.calls) * 1e6 : undefined;
  return { ...run, cpuUs, dbCpuUs };
}

/** A group's contenders over ROUNDS rounds, the order turning each round; medians per contender. */
async function group(results, title, contenders) {
  console.log(`measuring ${title} ...`);
  for (const c of contenders) measureOne(c); // warm-up: JIT, pools, caches
  const runs = contenders.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + r) % contenders.length;
      runs[i].push(measureOne(contenders[i]));
    }
  }
  const rows = contenders.map((c, i) => {
    const m = (key) => median(runs[i].map((x) => x[key]));
    return { group: title, name: c.name, what: c.what, ours: Boolean(c.ours), perSecond: m('perSecond'), perSecondSpread: spread(runs[i].map((x) => x.perSecond)), cpuUs: m('cpuUs'), dbCpuUs: c.dbPid ? m('dbCpuUs') : undefined, p50: m('p50'), p99: m('p99') };
  });
  results.peers.push(...rows);
  for (const row of rows) console.log(`  ${row.name}: ${row.perSecond.toFixed(0)}/s, ${row.cpuUs.toFixed(0)} µs CPU${row.dbCpuUs !== undefined ? ` + ${row.dbCpuUs.toFixed(0)} µs database` : ''}, p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms`);
}

const form = (o) => new URLSearchParams(o).toString();
const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** One HTTP/1.1 request on a connection of its own (a pooled one may have been closed while idle). */
function httpJson(port, pathName, { method = 'POST', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        if (res.statusCode < 200 || res.statusCode > 299) reject(new Error(`${pathName}: ${res.statusCode} ${text}`));
        else resolve({ json: JSON.parse(text), headers: res.headers, bytes: Buffer.byteLength(text) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** oidc-provider next to the memory-store service: client_credentials and introspection. */
async function oidcProviderGroups(results, service) {
  const peer = await startPeer('oidc-provider.mjs', { CLIENT_SECRET });
  try {
    const tokenHeaders = { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('bench', CLIENT_SECRET) };
    const jwtGrant = form({ grant_type: 'client_credentials', scope: 'reader', resource: 'urn:grpc-auth:services' });
    const opaqueGrant = form({ grant_type: 'client_credentials', scope: 'reader' });
    const issuedJwt = await httpJson(peer.port, '/token', { headers: tokenHeaders, body: jwtGrant });
    if (issuedJwt.json.access_token.split('.').length !== 3) throw new Error('oidc-provider did not issue a JWT for the resource');
    const issuedOpaque = await httpJson(peer.port, '/token', { headers: tokenHeaders, body: opaqueGrant });

    // The service's side: a service account with a secret (as in the IssueServiceToken figure).
    const adminToken = (await service.auth.login({ username: 'bench-admin', password: PASSWORD })).accessToken;
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${adminToken}`);
    const account = await service.admin.createServiceAccount({ name: 'bench-peers', roles: ['reader'] }, { metadata });
    const issue = { clientId: account.clientId, clientSecret: account.clientSecret };
    const issued = await service.auth.issueServiceToken(issue);
    const checked = await service.auth.validate({ accessToken: issued.accessToken });
    if (!checked.active) throw new Error('the service account\'s token is not active');
    const grpcHeaders = { 'content-type': 'application/grpc', te: 'trailers' };
    const ours = (name, what, method, init, answer) => ({ name, what, ours: true, pid: service.server.pid, load: { port: service.port, pathName: `/auth.v1.AuthService/${method}`, body: grpcFrame(rpc(method).input, init), headers: grpcHeaders, inFlight: 32, answerBytes: grpcBytes(rpc(method).output, answer) } });
    const theirs = (name, what, pathName, body, answerBytes) => ({ name, what, pid: peer.pid, load: { port: peer.port, pathName, body, headers: tokenHeaders, h1: true, inFlight: 32, answerBytes } });

    await group(results, 'A service\'s token (memory stores)', [
      ours('IssueServiceToken', 'client id + secret → ES256 JWT', 'IssueServiceToken', issue, issued),
      theirs('oidc-provider client_credentials (JWT)', 'client_secret_basic → ES256 JWT (resource indicator)', '/token', jwtGrant, issuedJwt.bytes),
      theirs('oidc-provider client_credentials (opaque)', 'client_secret_basic → opaque token, stored', '/token', opaqueGrant, issuedOpaque.bytes),
    ]);
    // Issued now: its in-memory adapter keeps the newest 1,000 entries, and the grants above made many more.
    const opaque = (await httpJson(peer.port, '/token', { headers: tokenHeaders, body: opaqueGrant })).json.access_token;
    const introspected = await httpJson(peer.port, '/token/introspection', { headers: tokenHeaders, body: form({ token: opaque }) });
    if (!introspected.json.active) throw new Error('oidc-provider: the opaque token is not active');
    await group(results, 'Checking a token (memory stores)', [
      ours('Validate', 'ES256 JWT (verified once, then cached) + the credential read from the store', 'Validate', { accessToken: issued.accessToken }, checked),
      theirs('oidc-provider introspection', 'client_secret_basic + the opaque token read from the store', '/token/introspection', form({ token: opaque }), introspected.bytes),
    ]);
  } finally {
    await peer.stop();
  }
}

/** better-auth next to the service, both on the same PostgreSQL: password sign-in and the session check. */
async function betterAuthGroups(results) {
  const started = [];
  const pg = await startPostgres();
  try {
    const admin = new (require('pg').Client)({ connectionString: pg.url });
    await admin.connect();
    for (const db of ['ours', 'argon2id', 'scrypt']) await admin.query(`CREATE DATABASE ${db}`);
    await admin.end();
    const dbUrl = (db) => pg.url.replace(/\/postgres$/, `/${db}`);
    const service = await startService({ env: { AUTH_DATABASE_URL: dbUrl('ours') } });
    started.push(service);
    const peers = {};
    for (const [hash, setting] of [['argon2id', 'argon2id'], ['scrypt', 'default']]) {
      peers[hash] = await startPeer('better-auth.mjs', { DATABASE_URL: dbUrl(hash), HASH: setting });
      started.push(peers[hash]);
    }

    // Two accounts: the sign-in figure's many sessions would push the checked one out of its user's session cap.
    await service.auth.register({ username: 'peer-bench', password: PASSWORD });
    await service.auth.register({ username: 'peer-check', password: PASSWORD });
    const login = { username: 'peer-bench', password: PASSWORD };
    const loggedIn = await service.auth.login(login);
    const token = (await service.auth.login({ username: 'peer-check', password: PASSWORD })).accessToken;
    const checked = await service.auth.validate({ accessToken: token });
    if (!checked.active) throw new Error('the PostgreSQL service\'s token is not active');
    // As a browser would send them: better-auth refuses a cross-site request without an Origin.
    const json = (peer) => ({ 'content-type': 'application/json', origin: `http://127.0.0.1:${peer.port}` });
    const signIn = JSON.stringify({ email: 'peer-bench@bench.example', password: PASSWORD });
    const cookies = {};
    const sizes = {};
    for (const [hash, peer] of Object.entries(peers)) {
      await httpJson(peer.port, '/api/auth/sign-up/email', { headers: json(peer), body: JSON.stringify({ email: 'peer-bench@bench.example', password: PASSWORD, name: 'peer-bench' }) });
      const signedIn = await httpJson(peer.port, '/api/auth/sign-in/email', { headers: json(peer), body: signIn });
      cookies[hash] = /better-auth\.session_token=[^;]+/.exec(String(signedIn.headers['set-cookie']))[0];
      const session = await httpJson(peer.port, '/api/auth/get-session', { method: 'GET', headers: { cookie: cookies[hash], origin: `http://127.0.0.1:${peer.port}` } });
      if (!session.json?.user) throw new Error(`better-auth (${hash}): no session from the cookie`);
      sizes[hash] = { signIn: signedIn.bytes, session: session.bytes };
    }
    const grpcHeaders = { 'content-type': 'application/grpc', te: 'trailers' };
    const ours = (name, what, method, init, answer, inFlight) => ({ name, what, ours: true, pid: service.server.pid, dbPid: pg.pid, load: { port: service.port, pathName: `/auth.v1.AuthService/${method}`, body: grpcFrame(rpc(method).input, init), headers: grpcHeaders, inFlight, answerBytes: grpcBytes(rpc(method).output, answer) } });
    const theirs = (hash, name, what, pathName, load) => ({ name, what, pid: peers[hash].pid, dbPid: pg.pid, load: { port: peers[hash].port, pathName, h1: true, ...load } });

    // Sign-in: 4 at a time on one account (the service lets 5 logins of one account run at once).
    await group(results, 'Password sign-in (PostgreSQL)', [
      ours('Login', 'argon2id (19 MiB, t=2) + a session written + ES256 access token and refresh token', 'Login', login, loggedIn, 4),
      theirs('argon2id', 'better-auth sign-in (argon2id as ours)', 'argon2id, the service\'s parameters + a session row + cookie', '/api/auth/sign-in/email', { body: signIn, headers: json(peers.argon2id), inFlight: 4, answerBytes: sizes.argon2id.signIn }),
      theirs('scrypt', 'better-auth sign-in (its scrypt)', 'scrypt N=16384 r=16 (its default, @noble/hashes) + a session row + cookie', '/api/auth/sign-in/email', { body: signIn, headers: json(peers.scrypt), inFlight: 4, answerBytes: sizes.scrypt.signIn }),
    ]);
    await group(results, 'Checking a session (PostgreSQL)', [
      ours('Validate', 'ES256 JWT (verified once, then cached) + the session and user read from PostgreSQL', 'Validate', { accessToken: token }, checked, 32),
      theirs('argon2id', 'better-auth get-session', 'signed cookie + the session and user read from PostgreSQL', '/api/auth/get-session', { headers: { cookie: cookies.argon2id, origin: `http://127.0.0.1:${peers.argon2id.port}` }, inFlight: 32, answerBytes: sizes.argon2id.session }),
    ]);
  } finally {
    for (const s of started.reverse()) await s.stop();
    await pg.stop();
  }
}

/** The peers' figures into `results.peers` (BENCH_ONLY=peers runs only these). */
async function peerFigures(results, service) {
  results.peers = [];
  if (!h2loadAvailable) {
    console.log('h2load not found (apt-get install -y nghttp2-client): the peers are skipped, since they are driven by the same load tool as the service');
    return;
  }
  installPeers();
  results.peerVersions = Object.fromEntries(['oidc-provider', 'better-auth'].map((p) => [p, require(path.join(PEERS_DIR, 'node_modules', p, 'package.json')).version]));
  await oidcProviderGroups(results, service);
  if (postgresBin('initdb')) await betterAuthGroups(results);
  else console.log('PostgreSQL server programs not found: better-auth is skipped');
}

module.exports = { peerFigures };

/**
 * Published figures of the servers a team would run instead, per vCPU as their authors measured
 * them, on their hardware (not this machine's): for scale only, beside our per-core figures.
 */
const PUBLISHED = {
  hydra: { source: 'Ory Hydra BENCHMARKS.md: in-memory store, 2 CPUs, `hey`', serviceToken: '206 (411 req/s ÷ 2; client secret hashed with BCrypt cost 8)', check: '3,967 (7,934 introspections/s ÷ 2)', login: '— (logins are the app\'s)', refresh: '—' },
  keycloak: { source: 'Keycloak sizing guide: per vCPU, PostgreSQL (Aurora) beside, TLS', serviceToken: '120 (a new TLS connection each)', check: '—', login: '15 (PBKDF2 hashing)', refresh: '120' },
  zitadel: { source: 'Zitadel v4 load tests: 6-vCPU containers, 2 to 7 of them, PostgreSQL on 8 vCPUs beside', serviceToken: '48–167 (2,006/s ÷ 12–42 vCPUs)', check: '115–401 (4,810 introspections/s ÷ 12–42 vCPUs)', login: '—', refresh: '—' },
};

const f0 = (x) => (typeof x === 'number' ? Math.round(x).toLocaleString('en-US') : '—');
const f2 = (x) => (typeof x === 'number' ? x.toFixed(2) : '—');

/** The side-by-side table of one run: calls/s, CPU per call, p50/p99 for every contender. */
function peersTable(results) {
  const header = '| Work | Server | What each call does | Calls/s (rounds) | CPU µs per call: server (+ database) | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|';
  const rows = results.peers.map((r) => `| ${r.group} | ${r.ours ? '**this service**' : r.name} | ${r.what} | ${f0(r.perSecond)} (${f0(r.perSecondSpread[0])}–${f0(r.perSecondSpread[1])}) | ${f0(r.cpuUs)}${r.dbCpuUs !== undefined ? ` (+ ${f0(r.dbCpuUs)})` : ''} | ${f2(r.p50)} | ${f2(r.p99)} |`);
  return `${header}\n${rows.join('\n')}\n`;
}

/**
 * Calls per second of one fully busy core, ours and the peers' (1e6 ÷ CPU µs per call: the
 * server's, and with PostgreSQL the server's plus the database's), next to the published figures.
 */
function perCoreTable(results) {
  const find = (group, ours, name) => results.peers.find((r) => r.group === group && r.ours === ours && (name === undefined || r.name === name));
  const perCore = (r) => (r ? `${f0(1e6 / r.cpuUs)}${r.dbCpuUs !== undefined ? ` (${f0(1e6 / (r.cpuUs + r.dbCpuUs))} with the database)` : ''}` : '—');
  const peer = (group, names) => names.map((n) => find(group, false, n)).filter(Boolean).map((r) => `${r.name}: ${perCore(r)}`).join('; ') || '—';
  const refresh = results.figures.find((r) => r.name === 'Refresh (memory store)');
  const rows = [
    ['A service\'s token (client credentials)', perCore(find('A service\'s token (memory stores)', true)), peer('A service\'s token (memory stores)', ['oidc-provider client_credentials (JWT)', 'oidc-provider client_credentials (opaque)']), 'serviceToken'],
    ['Checking a token (introspection)', perCore(find('Checking a token (memory stores)', true)), peer('Checking a token (memory stores)', ['oidc-provider introspection']), 'check'],
    ['Password sign-in (PostgreSQL)', perCore(find('Password sign-in (PostgreSQL)', true)), peer('Password sign-in (PostgreSQL)', ['better-auth sign-in (argon2id as ours)', 'better-auth sign-in (its scrypt)']), 'login'],
    ['Refresh (memory store)', refresh ? f0(1e6 / refresh.value) : '—', '—', 'refresh'],
    ['Checking a session (PostgreSQL)', perCore(find('Checking a session (PostgreSQL)', true)), peer('Checking a session (PostgreSQL)', ['better-auth get-session']), undefined],
  ];
  const header = '| Work | This service: 1,000,000 ÷ CPU µs per call (this run) | Node peers, the same way (this run) | Ory Hydra: published calls/s ÷ CPUs | Keycloak: published, per vCPU | Zitadel v4: published calls/s ÷ vCPUs |\n|---|---|---|---|---|---|';
  const body = rows.map(([work, ours, peers, key]) => `| ${work} | ${ours} | ${peers} | ${key ? PUBLISHED.hydra[key] : '—'} | ${key ? PUBLISHED.keycloak[key] : '—'} | ${key ? PUBLISHED.zitadel[key] : '—'} |`);
  const sources = Object.values(PUBLISHED).map((p) => `- ${p.source}`).join('\n');
  return { table: `${header}\n${body.join('\n')}\n`, sources };
}

module.exports.peersTable = peersTable;
module.exports.perCoreTable = perCoreTable;
