import { Metadata, status } from '@grpc/grpc-js';
import jwt from 'jsonwebtoken';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { SecureService } from '../../gen/auth/v1/secure_pb';
import { policiesFrom } from '../../src/grpc/access-policy';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { rawGrpcCall } from '../helpers/raw-http2';
import { writeUsersFile } from '../helpers/users';

describe('bearer interceptor on SecureService', () => {
  let server: TestServer;
  let user: { accessToken: string; refreshToken: string };
  let admin: { accessToken: string };

  beforeAll(async () => {
    const usersFile = await writeUsersFile({ root: ['admin', 'ops'], uma: [] });
    server = await startTestServer({ env: { AUTH_USERS_FILE: usersFile } });
    user = await server.auth.login({ username: 'uma', password: PASSWORD });
    admin = await server.auth.login({ username: 'root', password: PASSWORD });
  });
  afterAll(() => server.close());

  const metadataWith = (...values: string[]) => {
    const metadata = new Metadata();
    for (const v of values) metadata.add('authorization', v);
    return { metadata };
  };

  test.each([
    { name: 'no metadata', md: () => ({}), details: 'missing bearer token' },
    { name: 'empty value', md: () => metadataWith(''), details: 'authorization must be "Bearer <access token>"' },
    { name: 'Basic scheme', md: () => metadataWith('Basic dXNlcjpwYXNz'), details: 'authorization must be "Bearer <access token>"' },
    // HTTP/2 and grpc-js drop the trailing space, and then the header is empty.
    { name: 'Bearer without token', md: () => metadataWith('Bearer '), details: 'missing bearer token' },
    { name: 'garbage token', md: () => bearer('abc.def.ghi'), details: 'access token is not valid: malformed' },
    { name: 'refresh token as bearer', md: () => bearer(user.refreshToken), details: 'access token is not valid: malformed' },
    {
      name: 'wrong typ (a plain JWT signed by someone else)',
      md: () => bearer(jwt.sign({ sub: 'x' }, 'k'.repeat(32), { algorithm: 'HS256' })),
      details: 'access token is not valid: wrong algorithm',
    },
  ])('$name → UNAUTHENTICATED', async ({ md, details }) => {
    expect(await statusOf(server.secure.whoAmI({}, md()))).toEqual({ code: status.UNAUTHENTICATED, details });
  });

  // What grpc-js clients refuse to send, over a bare HTTP/2 connection.
  test.each([
    // grpc-js drops a metadata value with a control character, so the call has no token at all.
    { name: 'Bearer with a tab', value: () => `Bearer\t${user.accessToken}`, details: 'missing bearer token' },
    { name: 'non-ASCII in the token', value: () => `Bearer ${user.accessToken}é`, details: 'missing bearer token' },
    { name: 'Bearer with two spaces and trailing junk', value: () => `Bearer  ${user.accessToken} x`, details: 'authorization must be "Bearer <access token>"' },
  ])('raw: $name → UNAUTHENTICATED', async ({ value, details }) => {
    const result = await rawGrpcCall(server.address, '/auth.v1.SecureService/WhoAmI', { authorization: value() });
    expect(result).toEqual({ status: status.UNAUTHENTICATED, message: details });
  });

  test.each(['Bearer', 'bearer', 'BEARER', 'bEaReR'])('scheme "%s" is accepted in any case', async (scheme) => {
    await expect(server.secure.whoAmI({}, bearer(user.accessToken, scheme))).resolves.toMatchObject({ username: 'uma' });
  });

  test('the principal reaches the handler', async () => {
    const me = await server.secure.whoAmI({}, bearer(admin.accessToken));
    expect(me).toMatchObject({ username: 'root', roles: ['admin', 'ops'], userId: expect.stringMatching(/^usr_/), sessionId: expect.stringMatching(/^ses_/) });
  });

  test('role-gated RPC: admin passes, a valid token without the role is PERMISSION_DENIED', async () => {
    await expect(server.secure.adminPing({}, bearer(admin.accessToken))).resolves.toMatchObject({ message: 'pong' });
    expect(await statusOf(server.secure.adminPing({}, bearer(user.accessToken)))).toEqual({ code: status.PERMISSION_DENIED, details: 'requires role admin' });
  });

  test('an expired token is refused', async () => {
    const fresh = await startTestServer();
    try {
      await fresh.auth.register({ username: 'exp', password: PASSWORD });
      const { accessToken } = await fresh.auth.login({ username: 'exp', password: PASSWORD });
      fresh.clock.advance((900 + 30) * 1000);
      expect(await statusOf(fresh.secure.whoAmI({}, bearer(accessToken)))).toEqual({ code: status.UNAUTHENTICATED, details: 'access token is not valid: expired' });
    } finally {
      await fresh.close();
    }
  });

  test('a revoked session is refused from the moment of logout', async () => {
    const s = await server.auth.login({ username: 'uma', password: PASSWORD });
    await expect(server.secure.whoAmI({}, bearer(s.accessToken))).resolves.toBeDefined();
    await server.auth.logout({ refreshToken: s.refreshToken });
    expect(await statusOf(server.secure.whoAmI({}, bearer(s.accessToken)))).toEqual({ code: status.UNAUTHENTICATED, details: 'access token is not valid: revoked' });
  });

  test('public AuthService methods need no token', async () => {
    await expect(server.auth.getJwks({})).resolves.toBeDefined();
  });

  test('a bearer token on a public method is ignored, not checked', async () => {
    await expect(server.auth.getJwks({}, bearer('junk'))).resolves.toBeDefined();
  });
});

describe('policies come from the descriptors', () => {
  test('AuthService is public, WhoAmI needs a token, AdminPing needs admin; nothing else is allowed', () => {
    const policies = policiesFrom([AuthService, SecureService]);
    for (const m of AuthService.methods) expect(policies.get(`/auth.v1.AuthService/${m.name}`)).toEqual({ public: true, requiredRoles: [], mfa: false, maxAgeSeconds: 0 });
    expect(policies.get('/auth.v1.SecureService/WhoAmI')).toEqual({ public: false, requiredRoles: [], mfa: false, maxAgeSeconds: 0 });
    expect(policies.get('/auth.v1.SecureService/AdminPing')).toEqual({ public: false, requiredRoles: ['admin'], mfa: false, maxAgeSeconds: 0 });
    expect(policies.get('/auth.v1.SecureService/StepUpPing')).toEqual({ public: false, requiredRoles: [], mfa: true, maxAgeSeconds: 900 });
    expect(policies.size).toBe(AuthService.methods.length + SecureService.methods.length);
  });
});
