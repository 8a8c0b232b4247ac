import { Metadata, status } from '@grpc/grpc-js';
import { hashRefreshToken } from '../../src/core/refresh-token';
import { bearer, startTestServer, statusOf } from '../helpers/server';

describe('logs', () => {
  test('canary secrets never reach a log line; every call gets one line', async () => {
    const server = await startTestServer();
    const password = 'CANARY-password-7f3a9c-long-enough';
    try {
      await server.auth.register({ username: 'canary', password });
      await statusOf(server.auth.login({ username: 'canary', password: 'CANARY-wrong-password-1b2c3d' }));
      const login = await server.auth.login({ username: 'canary', password });
      await server.secure.whoAmI({}, bearer(login.accessToken));
      await statusOf(server.secure.adminPing({}, bearer(login.accessToken)));
      await server.auth.validate({ accessToken: login.accessToken });
      const second = await server.auth.refresh({ refreshToken: login.refreshToken });
      server.clock.advance(60_000);
      await statusOf(server.auth.refresh({ refreshToken: login.refreshToken })); // re-use
      await server.auth.logout({ refreshToken: second.refreshToken });
      await statusOf(server.secure.whoAmI({}, bearer('CANARY.bogus.token')));

      const user = await server.app.store.findUserByUsername('canary');
      const secrets = [
        password,
        'CANARY-wrong-password-1b2c3d',
        'CANARY.bogus.token',
        login.accessToken,
        login.accessToken.split('.')[2]!,
        login.refreshToken,
        login.refreshToken.slice(4),
        second.refreshToken,
        second.accessToken,
        hashRefreshToken(login.refreshToken),
        user!.passwordHash,
        user!.passwordHash.split('$').pop()!,
      ];
      const text = server.logs.text;
      for (const secret of secrets) expect(text).not.toContain(secret);

      const calls = server.logs.entries.filter((e) => e.msg === 'call');
      expect(calls).toHaveLength(10);
      for (const call of calls) {
        expect(Object.keys(call).sort()).toEqual(['clientAddress', 'code', 'level', 'method', 'ms', 'msg', 'reqId', 'service', 'time']);
      }
      expect(calls.map((c) => `${String(c.method).split('/').pop()} ${String(c.code)}`)).toEqual([
        'Register OK',
        'Login UNAUTHENTICATED',
        'Login OK',
        'WhoAmI OK',
        'AdminPing PERMISSION_DENIED',
        'Validate OK',
        'Refresh OK',
        'Refresh UNAUTHENTICATED',
        'Logout OK',
        'WhoAmI UNAUTHENTICATED',
      ]);
      expect(server.logs.entries.find((e) => e.event === 'refresh_token_reused')).toMatchObject({ level: 'warn', reqId: expect.any(String), method: '/auth.v1.AuthService/Refresh' });
    } finally {
      await server.close();
    }
  });

  test('a sane x-request-id is used and echoed in the trailers; an odd one is replaced', async () => {
    const server = await startTestServer();
    try {
      const call = (id: string) =>
        new Promise<string | undefined>((resolve) => {
          const metadata = new Metadata();
          metadata.set('x-request-id', id);
          server.auth.grpcClient.makeUnaryRequest(
            '/auth.v1.AuthService/GetJwks',
            () => Buffer.alloc(0),
            (b: Buffer) => b,
            {},
            metadata,
            {},
            () => {},
          ).on('status', (s) => resolve(s.metadata.get('x-request-id')[0] as string | undefined));
        });
      expect(await call('abc-123')).toBe('abc-123');
      const replaced = await call('x'.repeat(100));
      expect(replaced).toMatch(/^[0-9a-f]{8}-\d+$/);
      expect(server.logs.entries.filter((e) => e.msg === 'call').map((e) => e.reqId)).toEqual(['abc-123', replaced]);
    } finally {
      await server.close();
    }
  });

  test('malformed protobuf bytes get INVALID_ARGUMENT, not INTERNAL', async () => {
    const server = await startTestServer();
    try {
      const result = await new Promise<{ code: number; details: string }>((resolve) => {
        server.auth.grpcClient.makeUnaryRequest(
          '/auth.v1.AuthService/Login',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
          (err) => resolve({ code: err!.code, details: err!.details }),
        );
      });
      expect(result).toEqual({ code: status.INVALID_ARGUMENT, details: 'request is not a valid protobuf message' });
    } finally {
      await server.close();
    }
  });
});
