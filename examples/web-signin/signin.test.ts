import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createAuthClient, type AuthClient } from 'grpc-auth-service/client';
import { startTestAuthServer, type TestAuthServer } from 'grpc-auth-service/testing';
import { describeNeeding } from '../../test/helpers/requires';
import { rfc6238 } from '../../test/helpers/rfc6238';
import { createSignInServer } from './server';

/** @simplewebauthn/browser's UMD bundle (its exports map hides the file; the package's folder does not). */
const BUNDLE = join(dirname(require.resolve('@simplewebauthn/browser')), '..', 'dist', 'bundle', 'index.umd.min.js');
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
  let web: ReturnType<typeof createSignInServer>;
  let origin: string;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    web = createSignInServer({ auth: () => client, browserBundle: BUNDLE });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    origin = `http://localhost:${(web.address() as AddressInfo).port}`;
    kit = await startTestAuthServer({ env: { AUTH_WEBAUTHN_RP_ID: 'localhost', AUTH_WEBAUTHN_ORIGINS: origin } });
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
});
