import { status } from '@grpc/grpc-js';
import { generateKeyPairSync } from 'node:crypto';
import { ManualClock, startTestAuthServer, type TestAuthServer } from 'grpc-auth-service/testing';
import { startGreeter } from '../greeter/server';
import { startReports } from './reports';

/** The reports backend calls the greeter with a service account, verified by the greeter's interceptor. */
describe('reports example: service-to-service with a service account', () => {
  let clock: ManualClock;
  let auth: TestAuthServer;
  let greeter: Awaited<ReturnType<typeof startGreeter>>;
  let admin: { metadata: import('@grpc/grpc-js').Metadata };

  beforeEach(async () => {
    clock = new ManualClock();
    auth = await startTestAuthServer({ clock });
    greeter = await startGreeter({ mode: 'remote', auth: auth.client.auth, cacheTtlMs: 1000 }, clock);
    const metadata = new (await import('@grpc/grpc-js')).Metadata();
    metadata.set('authorization', `Bearer ${await auth.tokenFor(['admin'])}`);
    admin = { metadata };
  });
  afterEach(async () => {
    await greeter.close();
    await auth.close();
  });

  test('with a secret: greeted by its name, the admin-only audit answered with its id; renewed across expiry', async () => {
    const account = await auth.client.admin.createServiceAccount({ name: 'reports', roles: ['admin'] }, admin);
    const reports = await startReports({ authAddress: auth.address, greeterAddress: greeter.address, credentials: { clientId: account.clientId, clientSecret: account.clientSecret }, session: { clock } });
    try {
      expect(await reports.greet()).toBe('hello, reports');
      expect(await reports.audit()).toBe(account.clientId);
      const first = await reports.session.accessToken();
      clock.advance(16 * 60_000);
      expect(await reports.audit()).toBe(account.clientId);
      expect(await reports.session.accessToken()).not.toBe(first);
    } finally {
      reports.close();
    }
  });

  test('with a key (RFC 7523 assertions signed by the service itself)', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const account = await auth.client.admin.createServiceAccount({ name: 'reports-keyed', roles: ['admin'] }, admin);
    const { kid } = await auth.client.admin.addServiceAccountKey({ serviceAccountId: account.clientId, publicKeyJwk: JSON.stringify(publicKey.export({ format: 'jwk' })) }, admin);
    // The assertions' times come from the signing library's clock (real time); the auth server runs on it too here.
    clock.set(Date.now());
    const reports = await startReports({
      authAddress: auth.address,
      greeterAddress: greeter.address,
      credentials: { clientId: account.clientId, privateKey, kid, issuer: auth.issuer },
      session: { clock },
    });
    try {
      expect(await reports.audit()).toBe(account.clientId);
    } finally {
      reports.close();
    }
  });

  test('revoked credentials end the session with a callback at the next renewal; calls fail, the process lives', async () => {
    const account = await auth.client.admin.createServiceAccount({ name: 'reports', roles: ['admin'] }, admin);
    const ended = jest.fn();
    const reports = await startReports({
      authAddress: auth.address,
      greeterAddress: greeter.address,
      credentials: { clientId: account.clientId, clientSecret: account.clientSecret },
      session: { clock },
      onCredentialsRevoked: ended,
    });
    try {
      await reports.audit();
      await auth.client.admin.revokeServiceAccountSecret({ serviceAccountId: account.clientId, secretId: account.secretId }, admin);
      clock.advance(16 * 60_000);
      await expect(reports.audit()).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      expect(ended).toHaveBeenCalledTimes(1);
      expect(reports.session.isEnded).toBe(true);
    } finally {
      reports.close();
    }
  });
});
