'use strict';
// A backend-for-frontend for one sign-in page: serves the page and relays its calls to the auth
// service over gRPC with the package's SDK. The browser holds the short access token in memory
// only; the refresh token lives in an HttpOnly, Secure, SameSite=Strict cookie the page's script
// never sees, scoped to /api/session. Node's http module and JSON, no framework.
const { readFileSync } = require('node:fs');
const { createServer } = require('node:http');
const { join } = require('node:path');
const grpc = require('@grpc/grpc-js');

const COOKIE = 'refresh';
const PAGE = readFileSync(join(__dirname, 'public', 'index.html'));
const SCRIPT = readFileSync(join(__dirname, 'public', 'app.js'));
/** HTTP status for the gRPC codes the page can meet; anything else is 400. */
const HTTP = { [grpc.status.UNAUTHENTICATED]: 401, [grpc.status.PERMISSION_DENIED]: 403, [grpc.status.NOT_FOUND]: 404, [grpc.status.RESOURCE_EXHAUSTED]: 429, [grpc.status.UNAVAILABLE]: 503 };

/** @simplewebauthn/browser's UMD bundle (the package's exports map hides the file, not its folder). */
function browserBundle() {
  return join(require.resolve('@simplewebauthn/browser'), '..', '..', 'dist', 'bundle', 'index.umd.min.js');
}

/**
 * @param {{ auth: () => import('grpc-auth-service/client').AuthClient, browserBundle?: string }} options
 * `auth` gives the SDK client; every call carries the browser's address in `x-forwarded-for`, so
 * the auth service (with AUTH_TRUSTED_PROXIES naming this server) throttles each browser on its own.
 */
function createSignInServer(options) {
  const bundle = readFileSync(options.browserBundle ?? browserBundle());
  /** Call options: the browser's address, and its bearer token when it sent one. */
  const call = (req) => {
    const metadata = new grpc.Metadata();
    metadata.set('x-forwarded-for', req.socket.remoteAddress ?? '');
    if (req.headers.authorization) metadata.set('authorization', req.headers.authorization);
    return { metadata };
  };
  /** Keeps the refresh token in the cookie and hands the page the access token only. */
  const signedIn = (res, pair) => {
    res.setHeader('set-cookie', `${COOKIE}=${pair.refreshToken}; HttpOnly; Secure; SameSite=Strict; Path=/api/session; Max-Age=${pair.refreshExpiresIn}`);
    return { accessToken: pair.accessToken, expiresIn: pair.expiresIn };
  };
  const cookie = (req) => /(?:^|;\s*)refresh=([^;]+)/.exec(req.headers.cookie ?? '')?.[1] ?? '';
  const sdk = () => options.auth();

  const routes = {
    '/api/session/login': async (b, req, res) => {
      const r = await sdk().auth.login({ username: b.username ?? '', password: b.password ?? '' }, call(req));
      return r.mfaRequired ? { mfaRequired: true, mfaToken: r.mfaToken } : signedIn(res, r);
    },
    '/api/session/totp': async (b, req, res) => signedIn(res, await sdk().auth.completeLogin({ mfaToken: b.mfaToken ?? '', code: b.code ?? '' }, call(req))),
    '/api/session/passkey/start': async (_b, req) => {
      const { ceremonyId, optionsJson } = await sdk().auth.startPasskeyLogin({ username: '' }, call(req));
      return { ceremonyId, optionsJson };
    },
    '/api/session/passkey/finish': async (b, req, res) => signedIn(res, await sdk().auth.finishPasskeyLogin({ ceremonyId: b.ceremonyId ?? '', responseJson: b.responseJson ?? '' }, call(req))),
    '/api/session/refresh': async (_b, req, res) => signedIn(res, await sdk().auth.refresh({ refreshToken: cookie(req) }, call(req))),
    '/api/session/logout': async (_b, req, res) => {
      await sdk().auth.logout({ refreshToken: cookie(req) }, call(req));
      res.setHeader('set-cookie', `${COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/api/session; Max-Age=0`);
      return {};
    },
    '/api/me': async (_b, req) => ({ username: (await sdk().account.getAccount({}, call(req))).user?.username }),
    '/api/passkeys/start': async (_b, req) => {
      const { ceremonyId, optionsJson } = await sdk().account.startPasskeyRegistration({}, call(req));
      return { ceremonyId, optionsJson };
    },
    '/api/passkeys/finish': async (b, req) => {
      const { passkey } = await sdk().account.finishPasskeyRegistration({ ceremonyId: b.ceremonyId ?? '', responseJson: b.responseJson ?? '', name: b.name ?? '' }, call(req));
      return { name: passkey?.name };
    },
    // A protected call that needs a sign-in with a second factor (SecureService.StepUpPing: mfa: true).
    '/api/transfer': async (_b, req) => ({ message: (await sdk().secure.stepUpPing({}, call(req))).message }),
  };

  return createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/') return send(res, 200, PAGE, 'text/html; charset=utf-8');
    if (req.method === 'GET' && url === '/webauthn.js') return send(res, 200, bundle, 'text/javascript');
    if (req.method === 'GET' && url === '/app.js') return send(res, 200, SCRIPT, 'text/javascript');
    const route = routes[url];
    // JSON only: a cross-site form cannot send it, and the cookie is SameSite=Strict besides.
    if (req.method !== 'POST' || !route || !/^application\/json(;|$)/.test(req.headers['content-type'] ?? '')) return send(res, 404, '{"error":"not found"}', 'application/json');
    let raw = '';
    req.on('data', (chunk) => {
      raw += chunk.toString();
      if (raw.length > 64 * 1024) req.destroy();
    });
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(raw || '{}');
      } catch {
        return send(res, 400, '{"error":"not JSON"}', 'application/json');
      }
      route(body, req, res).then(
        (answer) => send(res, 200, JSON.stringify(answer), 'application/json'),
        (err) => send(res, HTTP[err.code] ?? 400, JSON.stringify({ error: err.details ?? 'failed', code: err.code }), 'application/json'),
      );
    });
  });
}

function send(res, code, body, type) {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'" });
  res.end(body);
}

module.exports = { createSignInServer };
