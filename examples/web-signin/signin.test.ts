import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createAuthClient, type AuthClient } from 'grpc-auth-service/client';
import { startTestAuthServer, type TestAuthServer } from 'grpc-auth-service/testing';
import { describeNeeding } from '../../test/helpers/requires';
import { rfc6238 } from '../../test/helpers/rfc6238';
// server.js is plain CommonJS, as a team would copy it into their own backend.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createSignInServer } = require('./server.js') as { createSignInServer: (o: { auth: () => AuthClient }) => Server };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PASSWORD = 'correct horse battery staple';
/** Screenshots of each step, kept for a person to look at (CI keeps the folder as an artifact). */
const SHOTS = join(__dirname, '..', '..', 'test-artifacts', 'web-signin');

/**
 * examples/web-signin end to end in Debian's Chromium (driven by playwright-core, which downloads
 * nothing), with a CDP virtual authenticator standing in for the platform's: internal, resident
 * keys, user verification. The auth service runs in-process on port 0; the page's origin is
 * http://localhost:<port>, which browsers treat as secure.
 */
describeNeeding(['chromium'], 'the sign-in page in a real browser', () => {
  let kit: TestAuthServer;
  let client: AuthClient;
  let browser: Browser;
  let web: Server;
  let origin: string;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    web = createSignInServer({ auth: () => client });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    origin = `http://localhost:${(web.address() as AddressInfo).port}`;
    kit = await startTestAuthServer({ env: { AUTH_WEBAUTHN_RP_ID: 'localhost', AUTH_WEBAUTHN_ORIGINS: origin, AUTH_TRUSTED_PROXIES: 'loopback' } });
    client = createAuthClient(kit.address);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    client?.close();
    await kit?.close();
    web?.closeAllConnections();
    await new Promise((resolve) => web?.close(resolve));
  });

  /** A new browser profile with a passkey authenticator of its own, on the sign-in page. */
  async function openPage(): Promise<Page> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    await page.goto(origin);
    return page;
  }

  const status = (page: Page, text: string) => page.getByRole('status').filter({ hasText: text }).waitFor({ timeout: 15_000 });

  test('password, step-up refused, add a passkey, sign out, username-less passkey sign-in, step-up passed, reload keeps the session', async () => {
    await client.auth.register({ username: 'alice', password: PASSWORD });
    const page = await openPage();
    await page.fill('#username', 'alice');
    await page.fill('#password', PASSWORD);
    await page.click('#login');
    await status(page, 'Signed in with a password');
    await page.getByText('Signed in as alice').waitFor();
    await page.screenshot({ path: join(SHOTS, '1-password.png') });

    const [cookie] = await page.context().cookies();
    expect(cookie).toMatchObject({ name: 'refresh', httpOnly: true, secure: true, sameSite: 'Strict', path: '/api/session' });
    // The page's script cannot read it.
    expect(await page.evaluate('document.cookie')).toBe('');

    await page.click('#transfer');
    await status(page, 'Transfer refused: this method needs a sign-in with a second factor');

    await page.click('#register-passkey');
    await status(page, 'Passkey added: This browser');
    await page.screenshot({ path: join(SHOTS, '2-passkey-added.png') });

    await page.click('#logout');
    await status(page, 'Signed out');
    expect(await page.context().cookies()).toEqual([]);

    await page.click('#passkey-login');
    await status(page, 'Signed in with a passkey');
    await page.getByText('Signed in as alice').waitFor();
    await page.click('#transfer');
    await status(page, 'Transfer done');
    await page.screenshot({ path: join(SHOTS, '3-passkey-step-up.png') });

    await page.reload();
    await page.getByText('Signed in as alice').waitFor();
    await page.context().close();
  }, 60_000);

  test('password and a TOTP code', async () => {
    await client.auth.register({ username: 'bob', password: PASSWORD });
    const first = await client.auth.login({ username: 'bob', password: PASSWORD });
    const auth = { metadata: new Metadata() };
    auth.metadata.set('authorization', `Bearer ${first.accessToken}`);
    const enrolled = await client.account.enrollTotp({}, auth);
    await client.account.confirmTotp({ enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, kit.clock.now()), password: PASSWORD }, auth);
    // The service's clock is the test's: the next step's code, since the confirming one is spent.
    kit.clock.advance(30_000);
    const page = await openPage();
    await page.fill('#username', 'bob');
    await page.fill('#password', PASSWORD);
    await page.click('#login');
    await status(page, 'Enter the code from your app');
    await page.fill('#totp', rfc6238(enrolled.secret, kit.clock.now()));
    await page.click('#totp-submit');
    await status(page, 'Signed in with a password and a code');
    await page.click('#transfer');
    await status(page, 'Transfer done');
    await page.screenshot({ path: join(SHOTS, '4-totp.png') });
    await page.context().close();
  }, 60_000);

  // The README's "Run it by hand", its two commands as written (ports made free).
  test('examples/web-signin/README.md: the service and main.js started as written serve the page', async () => {
    const readme = readFileSync(join(__dirname, 'README.md'), 'utf8');
    const [service, page] = /<!-- block: web-signin -->\n```sh\n([\s\S]*?)```/.exec(readme)![1]!.trim().split('\n');
    expect(service).toBe('AUTH_WEBAUTHN_RP_ID=localhost AUTH_WEBAUTHN_ORIGINS=http://localhost:8080 AUTH_TRUSTED_PROXIES=loopback node dist/src/main.js &');
    expect(page).toBe('AUTH_SERVICE=127.0.0.1:50051 PORT=8080 node examples/web-signin/main.js');
    const root = join(__dirname, '..', '..');
    const auth = spawn(process.execPath, ['dist/src/main.js'], { cwd: root, env: { PATH: process.env.PATH, AUTH_WEBAUTHN_RP_ID: 'localhost', AUTH_WEBAUTHN_ORIGINS: 'http://localhost:8080', AUTH_TRUSTED_PROXIES: 'loopback', AUTH_ADDRESS: '127.0.0.1:0' } });
    let bff: ReturnType<typeof spawn> | undefined;
    try {
      const started = await firstLine(auth.stdout!, (l) => l.includes('"event":"started"'));
      expect(JSON.parse(started)).toMatchObject({ passkeys: { rpId: 'localhost', origins: ['http://localhost:8080'] } });
      bff = spawn(process.execPath, ['examples/web-signin/main.js'], { cwd: root, env: { PATH: process.env.PATH, AUTH_SERVICE: JSON.parse(started).address, PORT: '0' } });
      const listening = await firstLine(bff.stdout!, (l) => l.startsWith('sign-in page on '));
      const url = /http:\/\/localhost:\d+/.exec(listening)![0];
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<h1>Sign in</h1>');
      const start = await fetch(`${url}/api/session/passkey/start`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{}' });
      expect(JSON.parse((await start.json() as { optionsJson: string }).optionsJson)).toMatchObject({ rpId: 'localhost' });
    } finally {
      bff?.kill();
      auth.kill();
    }
  }, 60_000);
});

/** The first line of `stream` that `match` accepts. */
function firstLine(stream: NodeJS.ReadableStream, match: (line: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`no such line in: ${buffered}`)), 30_000);
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n').find(match);
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
  });
}
