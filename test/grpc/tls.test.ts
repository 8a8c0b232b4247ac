import { credentials, status, type ChannelCredentials } from '@grpc/grpc-js';
import { copyFileSync } from 'node:fs';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { createClient } from '../../src/grpc/client';
import { startProcess } from '../helpers/process';
import { startTestServer, statusOf, type TestServer } from '../helpers/server';
import { createTestCa, describeWithOpenssl, pem, type TestCa } from '../helpers/tls';
import { eventually } from '../helpers/wait';

// Certificates name localhost and 127.0.0.1; the channel dials 127.0.0.1 and checks "localhost".
const clientOptions = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };

describeWithOpenssl('TLS and mTLS with real grpc-js clients', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let server: { cert: string; key: string };
  let client: { cert: string; key: string };
  let strangerClient: { cert: string; key: string };

  beforeAll(() => {
    ca = createTestCa('main');
    otherCa = createTestCa('other');
    server = ca.issue('server', 'server');
    client = ca.issue('client', 'client');
    strangerClient = otherCa.issue('stranger', 'client');
  });

  const jwks = async (address: string, creds: ChannelCredentials) => {
    const c = createClient(AuthService, address, creds, clientOptions);
    try {
      return await c.getJwks({}, { deadline: 3000 });
    } finally {
      c.close();
    }
  };
  const fails = async (address: string, creds: ChannelCredentials) => {
    const c = createClient(AuthService, address, creds, clientOptions);
    try {
      return (await statusOf(c.getJwks({}, { deadline: 3000 }))).code;
    } finally {
      c.close();
    }
  };

  describe('TLS', () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer({ env: { AUTH_TLS_CERT: server.cert, AUTH_TLS_KEY: server.key } });
    });
    afterAll(() => s.close());

    test('a client trusting the right CA is served', async () => {
      expect(s.app.transport).toBe('tls');
      await expect(jwks(s.address, credentials.createSsl(pem(ca.caPem)))).resolves.toMatchObject({ jwksJson: expect.any(String) });
    });

    test('a client trusting another CA is refused', async () => {
      expect(await fails(s.address, credentials.createSsl(pem(otherCa.caPem)))).toBe(status.UNAVAILABLE);
    });

    test('a plaintext client is refused', async () => {
      expect(await fails(s.address, credentials.createInsecure())).toBe(status.UNAVAILABLE);
    });
  });

  describe('mTLS', () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await startTestServer({ env: { AUTH_TLS_CERT: server.cert, AUTH_TLS_KEY: server.key, AUTH_TLS_CLIENT_CA: ca.caPem } });
    });
    afterAll(() => s.close());

    test('a client certificate from the client CA is accepted', async () => {
      expect(s.app.transport).toBe('mtls');
      await expect(jwks(s.address, credentials.createSsl(pem(ca.caPem), pem(client.key), pem(client.cert)))).resolves.toBeDefined();
    });

    test('no client certificate is refused', async () => {
      expect(await fails(s.address, credentials.createSsl(pem(ca.caPem)))).toBe(status.UNAVAILABLE);
    });

    test('a client certificate from another CA is refused', async () => {
      expect(await fails(s.address, credentials.createSsl(pem(ca.caPem), pem(strangerClient.key), pem(strangerClient.cert)))).toBe(status.UNAVAILABLE);
    });
  });

  test('reload (SIGHUP) swaps the certificate for new connections and keeps open ones', async () => {
    const next = createTestCa('next');
    const nextServer = next.issue('server', 'server');
    const live = ca.issue('live', 'server');
    const s = await startTestServer({ env: { AUTH_TLS_CERT: live.cert, AUTH_TLS_KEY: live.key } });
    const open = createClient(AuthService, s.address, credentials.createSsl(pem(ca.caPem)), clientOptions);
    try {
      await open.getJwks({});
      copyFileSync(nextServer.cert, live.cert);
      copyFileSync(nextServer.key, live.key);
      s.running.reloadTls();
      expect(s.logs.entries).toContainEqual(expect.objectContaining({ event: 'tls_reloaded' }));
      // The open connection carries on; new connections need the new CA.
      await expect(open.getJwks({})).resolves.toBeDefined();
      await expect(jwks(s.address, credentials.createSsl(pem(next.caPem)))).resolves.toBeDefined();
      expect(await fails(s.address, credentials.createSsl(pem(ca.caPem)))).toBe(status.UNAVAILABLE);

      // A broken reload keeps what works.
      copyFileSync(client.key, live.key);
      expect(() => s.running.reloadTls()).toThrow(/do not form a usable certificate and key/);
      await expect(jwks(s.address, credentials.createSsl(pem(next.caPem)))).resolves.toBeDefined();
    } finally {
      open.close();
      await s.close();
    }
  });

  test('the service process re-reads its certificates on SIGHUP and keeps serving', async () => {
    const running = await startProcess({ AUTH_TLS_CERT: server.cert, AUTH_TLS_KEY: server.key });
    try {
      expect(running.started).toMatchObject({ transport: 'tls' });
      running.child.kill('SIGHUP');
      await eventually(() => running.lines.some((l) => l.event === 'tls_reloaded'));
      await expect(jwks(String(running.started.address), credentials.createSsl(pem(ca.caPem)))).resolves.toBeDefined();
    } finally {
      running.child.kill('SIGTERM');
      expect(await running.exit).toBe(0);
    }
  });

  test('unreadable or mismatched files stop start-up with a message naming the file', async () => {
    await expect(startTestServer({ env: { AUTH_TLS_CERT: '/nonexistent.pem', AUTH_TLS_KEY: server.key } })).rejects.toThrow(
      'cannot read TLS certificate /nonexistent.pem: ENOENT',
    );
    await expect(startTestServer({ env: { AUTH_TLS_CERT: server.cert, AUTH_TLS_KEY: client.key } })).rejects.toThrow(/do not form a usable certificate and key/);
  });
});
