import { MemoryStore } from '../../src/store/memory-store';
import { describeStoreConformance } from './store-conformance';

describeStoreConformance('memory', async () => new MemoryStore({ revokedRetention: 60_000 }));

describe('MemoryStore.sweep', () => {
  const T0 = Date.UTC(2030, 0, 1);
  const HOUR = 3_600_000;

  test('drops expired tokens, ended sessions and revoked markers past retention; keeps the rest', async () => {
    const store = new MemoryStore({ revokedRetention: 60_000 });
    const s = (id: string, expiresAt: number) => ({ id, userId: 'u', username: 'u', roles: [], createdAt: T0, expiresAt });
    await store.createSession({ session: s('live', T0 + 10 * HOUR), refreshHash: 'l0', refreshExpiresAt: T0 + HOUR });
    await store.createSession({ session: s('ended', T0 + HOUR), refreshHash: 'e0', refreshExpiresAt: T0 + HOUR });
    await store.createSession({ session: s('revoked', T0 + 10 * HOUR), refreshHash: 'r0', refreshExpiresAt: T0 + HOUR });
    await store.revokeSessionByRefreshToken({ sessionId: 'revoked', hash: 'r0' }, T0);
    await store.rotateRefreshToken({ sessionId: 'live', hash: 'l0', successorHash: 'l1', sealedSuccessor: 's', now: T0, refreshTtl: 2 * HOUR, reuseInterval: 0 });

    expect(store.sweep(T0 + 59_999)).toEqual({ sessions: 0, tokens: 0 });
    expect(await store.isSessionActive('revoked', T0 + 59_999)).toBe(false);
    expect(store.sweep(T0 + 60_000)).toEqual({ sessions: 1, tokens: 1 });
    expect(store.sweep(T0 + HOUR)).toEqual({ sessions: 1, tokens: 2 });
    expect(store.size()).toEqual({ users: 0, sessions: 1, tokens: 1 });
    expect(await store.isSessionActive('live', T0 + HOUR)).toBe(true);
  });

  test('memory stays bounded under churn: everything created is swept once expired', async () => {
    const store = new MemoryStore({ revokedRetention: 60_000 });
    for (let i = 0; i < 10_000; i++) {
      const session = { id: `s${i}`, userId: 'u', username: 'u', roles: [], createdAt: T0, expiresAt: T0 + HOUR };
      await store.createSession({ session, refreshHash: `h${i}`, refreshExpiresAt: T0 + HOUR });
    }
    expect(store.size().sessions).toBe(10_000);
    store.sweep(T0 + HOUR);
    expect(store.size()).toEqual({ users: 0, sessions: 0, tokens: 0 });
  });
});
