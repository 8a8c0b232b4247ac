import { status } from '@grpc/grpc-js';
import { Health } from '../../gen/grpc/health/v1/health_pb';
import { AuthClientError } from '../../src';
import { createAuthClient } from '../../src/sdk/client';
import { createClient } from '../../src/grpc/client';
import { PASSWORD, startTestServer, type TestServer } from '../helpers/server';

/** One error type for everything a consumer calls: createClient, its streams, and the auth client. */
describe('AuthClientError, the one error of every client', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { AUTH_REGISTER_PER_ADDRESS: '1' } });
    await server.auth.register({ username: 'alice', password: PASSWORD });
  });
  afterAll(() => server.close());

  test('createClient: a refused call rejects with AuthClientError carrying code, details and trailers', async () => {
    const err = await server.auth.register({ username: 'bob', password: PASSWORD }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthClientError);
    expect(err).toMatchObject({ name: 'AuthClientError', code: status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/^too many registrations; retry in \d+ s$/) });
    expect((err as AuthClientError).retryAfterSeconds).toBeGreaterThan(0);
    expect((err as AuthClientError).metadata.get('x-request-id')).toHaveLength(1);
    expect((err as AuthClientError).message).toMatch(/^RESOURCE_EXHAUSTED: too many registrations/);
  });

  test('createClient: a failed server stream throws AuthClientError', async () => {
    const health = createClient(Health, server.address);
    try {
      const iterate = async () => {
        // Watch never ends by itself: the deadline ends it with a status.
        for await (const _ of health.watch({ service: '' }, { deadline: 100 })) void _;
      };
      const err = await iterate().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthClientError);
      expect(err).toMatchObject({ code: status.DEADLINE_EXCEEDED });
    } finally {
      health.close();
    }
  });

  test('the auth client and its sessions: the same type', async () => {
    const client = createAuthClient(server.address);
    try {
      const err = await client.login('alice', 'not the password!').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthClientError);
      expect(err).toMatchObject({ code: status.UNAUTHENTICATED, details: 'invalid username or password' });
      const viaRaw = await client.auth.login({ username: 'alice', password: 'not the password!' }).catch((e: unknown) => e);
      expect(viaRaw).toBeInstanceOf(AuthClientError);
    } finally {
      client.close();
    }
  });
});
