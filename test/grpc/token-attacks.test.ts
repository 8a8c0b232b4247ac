import { status } from '@grpc/grpc-js';
import { ManualClock } from '../../src/clock';
import type { InvalidReason } from '../../src/core/access-token';
import { createKeySet, generateEcKey } from '../../src/core/keys';
import { inactiveReasons } from '../../src/grpc/auth-service';
import { bearer, registerAndLogin, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { tokenAttacks } from '../helpers/token-attacks';


/**
 * Every row of the attack catalogue against both doors of the one verifier: Validate (an answer
 * with a reason) and the interceptor on SecureService (UNAUTHENTICATED naming the reason).
 * Transport limits answer first for what cannot even be sent as a field or a header.
 */
describe('token attacks over gRPC', () => {
  const key = generateEcKey();
  const clock = new ManualClock();
  let server: TestServer;
  let valid = '';
  beforeAll(async () => {
    server = await startTestServer({ keys: createKeySet([key]), clock });
    valid = (await registerAndLogin(server)).accessToken;
  });
  afterAll(() => server.close());

  const attacks = tokenAttacks({
    key,
    now: () => Math.floor(clock.now() / 1000),
    issuer: 'urn:grpc-auth:dev',
    audience: 'urn:grpc-auth:services',
    validToken: () => valid,
  });

  /** What Validate answers: the reason, or a status for fields it refuses outright. */
  const validateWant = (token: string, want: InvalidReason) => {
    if (token.length === 0) return { code: status.INVALID_ARGUMENT, details: 'access_token is required' };
    if (token.length > 64 * 1024) return { code: status.RESOURCE_EXHAUSTED };
    if (token.length > 4096) return { code: status.INVALID_ARGUMENT, details: 'access_token must be at most 4096 characters' };
    return { active: false, reason: inactiveReasons[want] };
  };

  test.each(attacks)('Validate: $name', async ({ token, want }) => {
    const t = token();
    const expected = validateWant(t, want);
    if ('reason' in expected) {
      expect(await server.auth.validate({ accessToken: t })).toMatchObject({ active: false, reason: expected.reason, userId: '', roles: [] });
    } else {
      expect(await statusOf(server.auth.validate({ accessToken: t }))).toMatchObject(expected);
    }
  });

  /** What the interceptor answers for `authorization: Bearer <token>`. */
  const interceptorWant = (token: string, want: InvalidReason): { code: number; details?: string } | 'accepted' => {
    if (token.trim().length === 0) return { code: status.UNAUTHENTICATED, details: 'missing bearer token' };
    // RFC 6750 section 2.1: "Bearer" 1*SP token, so a leading space is part of the separator.
    if (token.trim() === valid && /^ +/.test(token)) return 'accepted';
    // Node's HTTP/2 refuses a header list this large with RST_STREAM: the call never reaches the service.
    if (token.length > 100 * 1024) return { code: status.INTERNAL, details: 'Received RST_STREAM with code 9' };
    if (!/^ *[A-Za-z0-9\-._~+/]+=*$/.test(token)) return { code: status.UNAUTHENTICATED, details: 'authorization must be "Bearer <access token>"' };
    return { code: status.UNAUTHENTICATED, details: `access token is not valid: ${want.replaceAll('_', ' ')}` };
  };

  test.each(attacks)('interceptor: $name', async ({ token, want }) => {
    const t = token();
    const expected = interceptorWant(t, want);
    if (expected === 'accepted') await expect(server.secure.whoAmI({}, bearer(t))).resolves.toMatchObject({ username: 'alice' });
    else expect(await statusOf(server.secure.whoAmI({}, bearer(t)))).toEqual(expected);
  });

  test('the service keeps serving after the whole catalogue', async () => {
    await expect(server.secure.whoAmI({}, bearer(valid))).resolves.toMatchObject({ username: 'alice' });
  });
});
