import { status } from '@grpc/grpc-js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { createClient } from '../../src/grpc/client';
import { STORE_CHECK_INTERVAL_MS } from '../../src/run';
import { MemoryStore } from '../../src/store/memory-store';
import type { Store } from '../../src/store/store';
import { bearer, PASSWORD, registerAndLogin, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/wait';

type Mode = 'ok' | 'hang' | 'throw' | 'lose-reply';
type Op = Exclude<keyof Store, 'close' | 'connect'>;

/** A memory store whose chosen operations hang, throw, or do their work and then throw. */
function faultyStore() {
  const inner = new MemoryStore({ revokedRetention: 60_000 });
  const faults = new Map<string, Mode>();
  // Resolves when an operation set to hang has been called: the test then moves the clock.
  let hanging: () => void = () => {};
  let hung = new Promise<void>((resolve) => (hanging = resolve));
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const run = () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        switch (faults.get(String(prop)) ?? 'ok') {
          case 'hang':
            hanging();
            return new Promise(() => {});
          case 'throw':
            return Promise.reject(new TypeError('boom: secret detail'));
          case 'lose-reply':
            return run().then(() => Promise.reject(new Error('connection reset after the write')));
          default:
            return run();
        }
      };
    },
  }) as Store;
  return {
    store,
    inner,
    fail: (op: Op, mode: Mode) => {
      hung = new Promise<void>((resolve) => (hanging = resolve));
      faults.set(op, mode);
    },
    heal: () => faults.clear(),
    hung: () => hung,
  };
}

describe('a store that fails inside', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => process.off('unhandledRejection', onUnhandled));

  let faulty: ReturnType<typeof faultyStore>;
  let server: TestServer;
  let tokens: { accessToken: string; refreshToken: string };
  beforeEach(async () => {
    faulty = faultyStore();
    server = await startTestServer({ store: faulty.store, env: { AUTH_STORE_TIMEOUT: '1s' } });
    tokens = await registerAndLogin(server);
  });
  afterEach(async () => {
    faulty.heal();
    await server.close();
    expect(unhandled).toEqual([]);
  });

  // Every store operation, the RPCs that use it, for each way of failing.
  const calls: Record<Op, Array<[string, (s: TestServer) => Promise<unknown>]>> = {
    createUser: [['Register', (s) => s.auth.register({ username: 'bob', password: PASSWORD })]],
    findUserByUsername: [
      ['Register', (s) => s.auth.register({ username: 'bob', password: PASSWORD })],
      ['Login', (s) => s.auth.login({ username: 'alice', password: PASSWORD })],
    ],
    createSession: [['Login', (s) => s.auth.login({ username: 'alice', password: PASSWORD })]],
    rotateRefreshToken: [['Refresh', (s) => s.auth.refresh({ refreshToken: tokens.refreshToken })]],
    revokeSessionByRefreshToken: [['Logout', (s) => s.auth.logout({ refreshToken: tokens.refreshToken })]],
    isSessionActive: [
      ['Validate', (s) => s.auth.validate({ accessToken: tokens.accessToken })],
      ['WhoAmI', (s) => s.secure.whoAmI({}, bearer(tokens.accessToken))],
    ],
    beginAttempt: [['Login', (s) => s.auth.login({ username: 'alice', password: PASSWORD })]],
    endAttempt: [
      ['Login', (s) => s.auth.login({ username: 'alice', password: PASSWORD })],
      ['Login', (s) => s.auth.login({ username: 'alice', password: 'a wrong password, long' })],
    ],
    ping: [],
  };
  const rows = (Object.entries(calls) as Array<[Op, Array<[string, (s: TestServer) => Promise<unknown>]>]>).flatMap(([op, rpcs]) =>
    rpcs.flatMap(([rpc, call]) => (['hang', 'throw'] as const).map((mode) => ({ op, rpc, call, mode }))),
  );

  test.each(rows)('$op $mode → $rpc fails with UNAVAILABLE at the store timeout', async ({ op, call, mode }) => {
    faulty.fail(op, mode);
    const result = statusOf(call(server));
    if (mode === 'hang') {
      await faulty.hung();
      server.clock.advance(1000);
    }
    expect(await result).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
    faulty.heal();
    // Nothing was half-written: the session still works as before.
    expect((await server.auth.validate({ accessToken: tokens.accessToken })).active).toBe(true);
    await expect(server.auth.refresh({ refreshToken: tokens.refreshToken })).resolves.toBeDefined();
    const failure = server.logs.entries.find((e) => e.msg === 'call failed: store unavailable');
    expect(failure).toMatchObject({ level: 'warn', cause: { type: mode === 'throw' ? 'TypeError' : 'Error' } });
    expect(server.logs.text).not.toContain('"stack"');
  });

  test('a rotation whose reply is lost: the retry gets the successor the store kept, not a revocation', async () => {
    faulty.fail('rotateRefreshToken', 'lose-reply');
    expect((await statusOf(server.auth.refresh({ refreshToken: tokens.refreshToken }))).code).toBe(status.UNAVAILABLE);
    faulty.heal();
    const retried = await server.auth.refresh({ refreshToken: tokens.refreshToken });
    await expect(server.auth.refresh({ refreshToken: retried.refreshToken })).resolves.toBeDefined();
  });

  test('ping failing turns health NOT_SERVING at the next check, and back when it answers', async () => {
    const health = createClient(Health, server.address);
    try {
      faulty.fail('ping', 'throw');
      expect((await health.check({ service: '' })).status).toBe(ServingStatus.SERVING);
      server.clock.advance(STORE_CHECK_INTERVAL_MS);
      await eventually(async () => (await health.check({ service: '' })).status === ServingStatus.NOT_SERVING);
      faulty.heal();
      server.clock.advance(STORE_CHECK_INTERVAL_MS);
      await eventually(async () => (await health.check({ service: '' })).status === ServingStatus.SERVING);
    } finally {
      health.close();
    }
  });
});
