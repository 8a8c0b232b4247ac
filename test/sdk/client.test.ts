import * as grpc from '@grpc/grpc-js';
import { SecureService } from '../../gen/auth/v1/secure_pb';
import { ManualClock } from '../../src/clock';
import { createClient } from '../../src/grpc/client';
import { AuthClientError, SessionEndedError, TokenSession } from '../../src/sdk/client';
import { startTestAuthServer, type TestAuthServer } from '../../src/sdk/testing';
import { whileMoving } from '../helpers/wait';

describe('client and token session', () => {
  let server: TestAuthServer;
  let clock: ManualClock;
  beforeEach(async () => {
    clock = new ManualClock();
    server = await startTestAuthServer({ clock });
  });
  afterEach(() => server.close());

  /** How many rotations the server has done (its audit-event counter). */
  const rotations = async () =>
    (await server.app.metrics.registry.getSingleMetric('auth_events_total')!.get()).values.find((v) => v.labels.event === 'session_refreshed')?.value ?? 0;

  test('every RPC is there, typed, and failures are AuthClientError with the status code', async () => {
    const user = await server.createUser('alice');
    await expect(server.client.auth.login({ username: 'alice', password: user.password })).resolves.toMatchObject({ tokenType: 'Bearer' });
    const err = await server.client.auth.login({ username: 'alice', password: 'wrong password, long' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthClientError);
    expect(err).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: 'invalid username or password' });
    expect(await server.client.secure.whoAmI({}).catch((e: AuthClientError) => e.code)).toBe(grpc.status.UNAUTHENTICATED);
  });

  test('refreshes ahead of expiry, by the margin, and the new token works', async () => {
    const user = await server.createUser('alice', ['admin']);
    const session = await server.client.login('alice', user.password, { clock, refreshMarginMs: 60_000 });
    const first = await session.accessToken();
    clock.advance((900 - 61) * 1000);
    expect(await session.accessToken()).toBe(first);
    clock.advance(2000);
    const second = await session.accessToken();
    expect(second).not.toBe(first);
    expect((await server.client.auth.validate({ accessToken: second })).active).toBe(true);
  });

  test('single-flight: many concurrent callers share one Refresh, and re-use detection never trips', async () => {
    const user = await server.createUser('alice');
    const session = await server.client.login('alice', user.password, { clock });
    clock.advance(900_000);
    const tokens = await Promise.all(Array.from({ length: 50 }, () => session.accessToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(await rotations()).toBe(1);
    expect((await server.client.auth.validate({ accessToken: tokens[0]! })).active).toBe(true);
    expect(session.isEnded).toBe(false);
  });

  test('client clock skew does not matter: expiry is reckoned from expires_in', async () => {
    const user = await server.createUser('alice');
    const skewed = new ManualClock(clock.now() + 3_600_000); // the client is an hour ahead
    const session = await server.client.login('alice', user.password, { clock: skewed });
    await session.accessToken();
    expect(await rotations()).toBe(0);
  });

  test('call credentials put a fresh bearer token on every call', async () => {
    const user = await server.createUser('alice', ['admin']);
    const session = await server.client.login('alice', user.password, { clock });
    const secure = createClient(SecureService, server.address);
    try {
      await expect(secure.adminPing({}, { credentials: session.callCredentials() })).resolves.toMatchObject({ message: 'pong' });
      clock.advance(900_000);
      await expect(secure.whoAmI({}, { credentials: session.callCredentials() })).resolves.toMatchObject({ username: 'alice' });
    } finally {
      secure.close();
    }
  });

  test('logout ends the session on the server and locally', async () => {
    const user = await server.createUser('alice');
    const ended = jest.fn();
    const session = await server.client.login('alice', user.password, { clock, onEnded: ended });
    const token = await session.accessToken();
    await session.logout();
    expect(ended).toHaveBeenCalledWith('logout');
    await expect(session.accessToken()).rejects.toBeInstanceOf(SessionEndedError);
    expect((await server.client.auth.validate({ accessToken: token })).active).toBe(false);
  });
});

describe('token session against a scripted server', () => {
  const tokens = { accessToken: 'a0', refreshToken: 'r0', expiresIn: 60, refreshExpiresIn: 3600, tokenType: 'Bearer' } as never;
  const fail = (code: grpc.status) => Promise.reject(new AuthClientError(code, grpc.status[code]!));

  test('transient failures retry with back-off; the last error surfaces if they persist', async () => {
    const clock = new ManualClock();
    const refresh = jest
      .fn()
      .mockImplementationOnce(() => fail(grpc.status.UNAVAILABLE))
      .mockImplementationOnce(() => fail(grpc.status.DEADLINE_EXCEEDED))
      .mockResolvedValueOnce({ accessToken: 'a1', refreshToken: 'r1', expiresIn: 60 });
    const session = new TokenSession({ refresh, logout: jest.fn() }, tokens, { clock, backoffMs: 1 });
    clock.advance(60_000);
    expect(await whileMoving(clock, session.accessToken(), 10)).toBe('a1');
    expect(refresh).toHaveBeenCalledTimes(3);
    expect(refresh.mock.calls.map((c) => (c[0] as { refreshToken: string }).refreshToken)).toEqual(['r0', 'r0', 'r0']);

    const down = jest.fn(() => fail(grpc.status.UNAVAILABLE));
    const other = new TokenSession({ refresh: down, logout: jest.fn() }, tokens, { clock, backoffMs: 1, maxAttempts: 3 });
    clock.advance(60_000);
    await expect(whileMoving(clock, other.accessToken(), 10)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(down).toHaveBeenCalledTimes(3);
    expect(other.isEnded).toBe(false);
  });

  test('UNAUTHENTICATED ends the session and tells the caller', async () => {
    const clock = new ManualClock();
    const ended = jest.fn();
    const session = new TokenSession({ refresh: jest.fn(() => fail(grpc.status.UNAUTHENTICATED)), logout: jest.fn() }, tokens, { clock, onEnded: ended });
    clock.advance(60_000);
    await expect(session.accessToken()).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(ended).toHaveBeenCalledWith(expect.any(AuthClientError));
    await expect(session.accessToken()).rejects.toBeInstanceOf(SessionEndedError);
  });
});
