import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { AuthClient } from 'grpc-auth-service/client';

/**
 * A backend-for-frontend: serves one sign-in page and relays its calls to the auth service over
 * gRPC with the package's SDK. The browser holds the short access token in memory only; the
 * refresh token lives in an HttpOnly, Secure, SameSite=Strict cookie the page's script never sees,
 * scoped to /api/session. No framework: Node's http module and JSON.
 */
export interface SignInOptions {
  /** The auth service's client (createAuthClient). */
  readonly auth: () => AuthClient;
  /** Where @simplewebauthn/browser's UMD bundle is (served to the page as /webauthn.js). */
  readonly browserBundle: string;
}

const COOKIE = 'refresh';
const PAGE = readFileSync(join(__dirname, 'public', 'index.html'));
const SCRIPT = readFileSync(join(__dirname, 'public', 'app.js'));

type Handler = (body: Record<string, string>, req: IncomingMessage, res: ServerResponse) => Promise<unknown>;

export function createSignInServer(options: SignInOptions): Server {
  const bundle = readFileSync(options.browserBundle);
  const bearer = (req: IncomingMessage) => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', req.headers.authorization ?? '');
    return { metadata };
  };
  /** Keeps the refresh token in the cookie and hands the page the access token only. */
  const signedIn = (res: ServerResponse, pair: { accessToken: string; refreshToken: string; refreshExpiresIn: number; expiresIn: number }) => {
    res.setHeader('set-cookie', `${COOKIE}=${pair.refreshToken}; HttpOnly; Secure; SameSite=Strict; Path=/api/session; Max-Age=${pair.refreshExpiresIn}`);
    return { accessToken: pair.accessToken, expiresIn: pair.expiresIn };
  };
  const cookie = (req: IncomingMessage) => /(?:^|;\s*)refresh=([^;]+)/.exec(req.headers.cookie ?? '')?.[1] ?? '';

  const routes: Record<string, Handler> = {
    '/api/session/login': async (b, _req, res) => {
      const r = await options.auth().auth.login({ username: b.username ?? '', password: b.password ?? '' });
      return r.mfaRequired ? { mfaRequired: true, mfaToken: r.mfaToken } : signedIn(res, r);
    },
    '/api/session/totp': async (b, _req, res) => signedIn(res, await options.auth().auth.completeLogin({ mfaToken: b.mfaToken ?? '', code: b.code ?? '' })),
    '/api/session/passkey/start': async () => options.auth().auth.startPasskeyLogin({ username: '' }),
    '/api/session/passkey/finish': async (b, _req, res) => signedIn(res, await options.auth().auth.finishPasskeyLogin({ ceremonyId: b.ceremonyId ?? '', responseJson: b.responseJson ?? '' })),
    '/api/session/refresh': async (_b, req, res) => signedIn(res, await options.auth().auth.refresh({ refreshToken: cookie(req) })),
    '/api/session/logout': async (_b, req, res) => {
      await options.auth().auth.logout({ refreshToken: cookie(req) });
      res.setHeader('set-cookie', `${COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/api/session; Max-Age=0`);
      return {};
    },
    '/api/me': async (_b, req) => {
      const { user } = await options.auth().account.getAccount({}, bearer(req));
      return { username: user?.username };
    },
    '/api/passkeys/start': async (_b, req) => options.auth().account.startPasskeyRegistration({}, bearer(req)),
    '/api/passkeys/finish': async (b, req) => {
      const { passkey } = await options.auth().account.finishPasskeyRegistration({ ceremonyId: b.ceremonyId ?? '', responseJson: b.responseJson ?? '', name: b.name ?? '' }, bearer(req));
      return { name: passkey?.name };
    },
    // A protected call that needs a sign-in with a second factor (SecureService.StepUpPing: mfa: true).
    '/api/transfer': async (_b, req) => options.auth().secure.stepUpPing({}, bearer(req)),
  };

  return createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/') return send(res, 200, PAGE, 'text/html; charset=utf-8');
    if (req.method === 'GET' && url === '/webauthn.js') return send(res, 200, bundle, 'text/javascript');
    if (req.method === 'GET' && url === '/app.js') return send(res, 200, SCRIPT, 'text/javascript');
    const route = routes[url];
    // JSON only, and a header a cross-site form cannot send: with SameSite=Strict, no CSRF.
    if (req.method !== 'POST' || !route || req.headers['content-type'] !== 'application/json') return send(res, 404, '{"error":"not found"}', 'application/json');
    let raw = '';
    req.on('data', (chunk: Buffer) => {
      raw += chunk.toString();
      if (raw.length > 64 * 1024) req.destroy();
    });
    req.on('end', () => {
      let body: Record<string, string>;
      try {
        body = JSON.parse(raw || '{}') as Record<string, string>;
      } catch {
        return send(res, 400, '{"error":"not JSON"}', 'application/json');
      }
      route(body, req, res).then(
        (answer) => send(res, 200, JSON.stringify(answer), 'application/json'),
        (err: { code?: number; details?: string }) => send(res, err.code === grpc.status.UNAUTHENTICATED ? 401 : 400, JSON.stringify({ error: err.details ?? 'failed', code: err.code }), 'application/json'),
      );
    });
  });
}

function send(res: ServerResponse, code: number, body: string | Buffer, type: string): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'" });
  res.end(body);
}
