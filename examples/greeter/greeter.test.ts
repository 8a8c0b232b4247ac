import { status } from '@grpc/grpc-js';
import { createClient } from 'grpc-auth-service';
import { createAuthClient, stepUpRequired } from 'grpc-auth-service/client';
import { Secret, TOTP } from 'otpauth';
import { ManualClock, startTestAuthServer, type TestAuthServer } from 'grpc-auth-service/testing';
import { GreeterService } from './gen/greeter/v1/greeter_pb';
import { startGreeter } from './server';

/**
 * The whole picture in-process: the auth service (test kit), a backend protected by the
 * interceptor, and a client whose token session keeps its access token fresh.
 */
describe.each(['local', 'remote'] as const)('greeter example, %s verification', (mode) => {
  let clock: ManualClock;
  let auth: TestAuthServer;
  let greeter: Awaited<ReturnType<typeof startGreeter>>;
  let client: ReturnType<typeof createClient<typeof GreeterService>>;

  beforeEach(async () => {
    clock = new ManualClock();
    auth = await startTestAuthServer({ clock });
    const verification =
      mode === 'local'
        ? { mode, fetchJwks: () => auth.client.auth.getJwks({}).then((r) => r.jwksJson), issuer: auth.issuer, audience: auth.audience }
        : { mode, auth: auth.client.auth, cacheTtlMs: 1000 };
    greeter = await startGreeter(verification, clock);
    client = createClient(GreeterService, greeter.address);
  });
  afterEach(async () => {
    client.close();
    await greeter.close();
    await auth.close();
  });

  const code = (p: Promise<unknown>) => p.then(() => status.OK, (e: { code: number }) => e.code);

  test('anonymous: public method answers, protected ones refuse', async () => {
    await expect(client.hello({})).resolves.toMatchObject({ message: 'hello' });
    expect(await code(client.greet({}))).toBe(status.UNAUTHENTICATED);
    expect(await code(client.audit({}))).toBe(status.UNAUTHENTICATED);
  });

  test('a user is greeted by name; the admin-only call refuses a user and answers an admin', async () => {
    const user = await auth.createUser('uma');
    const sdk = createAuthClient(auth.address);
    try {
      const session = await sdk.login('uma', user.password, { clock });
      await expect(client.greet({}, { credentials: session.callCredentials() })).resolves.toMatchObject({ message: 'hello, uma' });
      expect(await code(client.audit({}, { credentials: session.callCredentials() }))).toBe(status.PERMISSION_DENIED);
      const adminToken = await auth.tokenFor(['admin']);
      const metadata = new (await import('@grpc/grpc-js')).Metadata();
      metadata.set('authorization', `Bearer ${adminToken}`);
      await expect(client.audit({}, { metadata })).resolves.toMatchObject({ userId: expect.stringMatching(/^usr_/) });
    } finally {
      sdk.close();
    }
  });

  test('tokens are refreshed transparently across an access-token expiry driven by the clock', async () => {
    const user = await auth.createUser('rita');
    const sdk = createAuthClient(auth.address);
    try {
      const session = await sdk.login('rita', user.password, { clock });
      const credentials = session.callCredentials();
      const first = await session.accessToken();
      await expect(client.greet({}, { credentials })).resolves.toMatchObject({ message: 'hello, rita' });
      clock.advance(16 * 60_000); // past the 15-minute access token, inside the refresh token's life
      await expect(client.greet({}, { credentials })).resolves.toMatchObject({ message: 'hello, rita' });
      expect(await session.accessToken()).not.toBe(first);
    } finally {
      sdk.close();
    }
  });

  test('step-up: Transfer refuses a password-only sign-in (MFA_REQUIRED), answers one with a second factor, then asks again after 5 minutes', async () => {
    const user = await auth.createUser('tess');
    const sdk = createAuthClient(auth.address);
    const refusal = (p: Promise<unknown>) => p.then(() => 'OK', (e: unknown) => stepUpRequired(e));
    try {
      // Tess turns on an authenticator app (its codes computed here with the otpauth library).
      const first = await sdk.login('tess', user.password, { clock });
      const enrolled = await sdk.account.enrollTotp({}, { credentials: first.callCredentials() });
      const app = new TOTP({ secret: Secret.fromBase32(enrolled.secret) });
      await sdk.account.confirmTotp({ enrollmentId: enrolled.enrollmentId, code: app.generate({ timestamp: clock.now() }), password: user.password }, { credentials: first.callCredentials() });
      expect(await refusal(client.transfer({}, { credentials: first.callCredentials() }))).toEqual({ reason: 'MFA_REQUIRED', maxAgeSeconds: undefined });

      clock.advance(30_000); // the confirming code is spent: the app's next one
      const strong = await sdk.login('tess', user.password, { clock, mfaCode: () => app.generate({ timestamp: clock.now() }) });
      await expect(client.transfer({}, { credentials: strong.callCredentials() })).resolves.toMatchObject({ userId: expect.stringMatching(/^usr_/) });
      clock.advance(301_000);
      expect(await refusal(client.transfer({}, { credentials: strong.callCredentials() }))).toEqual({ reason: 'REAUTHENTICATION_REQUIRED', maxAgeSeconds: 300 });
      // Greet asks for nothing more than a valid token.
      await expect(client.greet({}, { credentials: strong.callCredentials() })).resolves.toMatchObject({ message: 'hello, tess' });
    } finally {
      sdk.close();
    }
  });

  if (mode === 'remote') {
    test('remote verification sees a logout once its short cache has expired', async () => {
      const user = await auth.createUser('lou');
      const sdk = createAuthClient(auth.address);
      try {
        const session = await sdk.login('lou', user.password, { clock });
        const token = await session.accessToken();
        const metadata = new (await import('@grpc/grpc-js')).Metadata();
        metadata.set('authorization', `Bearer ${token}`);
        await expect(client.greet({}, { metadata })).resolves.toBeDefined();
        await session.logout();
        clock.advance(1001);
        expect(await code(client.greet({}, { metadata }))).toBe(status.UNAUTHENTICATED);
      } finally {
        sdk.close();
      }
    });
  }
});
