import { status } from '@grpc/grpc-js';
import { AuthError } from '../../src/errors';
import { MemoryStore } from '../../src/store/memory-store';
import type { Store } from '../../src/store/store';
import { bearer, PASSWORD, registerAndLogin, startTestServer, statusOf } from '../helpers/server';

type Mode = 'ok' | 'hang' | 'throw' | 'unavailable';

/** A memory store whose every method can be made to hang or fail. */
function faultyStore(): { store: Store; set(mode: Mode): void } {
  const inner = new MemoryStore({ revokedRetention: 60_000 });
  let mode: Mode = 'ok';
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'close') return value;
      return (...args: unknown[]) => {
        if (mode === 'hang') return new Promise(() => {});
        if (mode === 'throw') return Promise.reject(new TypeError('boom: secret detail'));
        if (mode === 'unavailable') return Promise.reject(new AuthError('unavailable', 'session store unavailable'));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, set: (m) => (mode = m) };
}

describe('a store that fails', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => process.off('unhandledRejection', onUnhandled));

  test.each([
    { mode: 'hang' as const, code: status.DEADLINE_EXCEEDED, details: 'the call took too long' },
    { mode: 'throw' as const, code: status.INTERNAL, details: 'internal error' },
    { mode: 'unavailable' as const, code: status.UNAVAILABLE, details: 'session store unavailable' },
  ])('$mode: every RPC that touches the store ends with $code, then recovers', async ({ mode, code, details }) => {
    const faulty = faultyStore();
    const server = await startTestServer({ store: faulty.store, env: { AUTH_CALL_TIMEOUT: '1' } });
    try {
      const tokens = await registerAndLogin(server);
      faulty.set(mode);
      const calls = [
        server.auth.register({ username: 'bob', password: PASSWORD }),
        server.auth.login({ username: 'alice', password: PASSWORD }),
        server.auth.refresh({ refreshToken: tokens.refreshToken }),
        server.auth.validate({ accessToken: tokens.accessToken }),
        server.auth.logout({ refreshToken: tokens.refreshToken }),
      ];
      for (const call of calls) expect(await statusOf(call)).toEqual({ code, details });
      // The interceptor's revocation check fails closed, with the same status.
      expect(await statusOf(server.secure.whoAmI({}, bearer(tokens.accessToken)))).toEqual(
        mode === 'hang' ? { code: status.DEADLINE_EXCEEDED, details: expect.any(String) } : { code, details },
      );
      faulty.set('ok');
      // Nothing was half-written: the old refresh token still rotates exactly once.
      await expect(server.auth.refresh({ refreshToken: tokens.refreshToken })).resolves.toBeDefined();
      if (mode === 'throw') {
        // Operators see what broke (type and message, never a stack); the caller saw only "internal error".
        const failure = server.logs.entries.find((e) => e.msg === 'call failed');
        expect(failure).toMatchObject({ level: 'error', cause: { type: 'TypeError', message: 'boom: secret detail' } });
        expect(server.logs.text).not.toContain('stack');
      }
      expect(unhandled).toEqual([]);
    } finally {
      faulty.set('ok');
      await server.close();
    }
  }, 30_000);
});
