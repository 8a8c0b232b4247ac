import fc from 'fast-check';
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
    await store.rotateRefreshToken({ sessionId: 'live', hash: 'l0', successorHash: 'l1', sealedSuccessor: 's', now: T0, refreshTtlMs: 2 * HOUR, reuseIntervalMs: 0 });

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

  test('keeps every time exact to the millisecond, though it packs them (property)', async () => {
    // Whole seconds plus packed millisecond remainders (see SessionEntry): any integer time in ms,
    // before or after 2038, comes back unchanged, and every boundary stays where it was.
    const time = fc.integer({ min: 0, max: 2 ** 43 });
    await fc.assert(
      fc.asyncProperty(time, time, time, fc.integer({ min: 1, max: 2 ** 35 }), async (createdAt, a, b, ttl) => {
        const [tokenExpiresAt, expiresAt] = a <= b ? [a + 1, b + 2] : [b + 1, a + 2];
        const now = Math.min(createdAt, tokenExpiresAt - 1);
        const store = new MemoryStore({ revokedRetention: 60_000 });
        const session = { id: 'ses_1', userId: 'u', username: 'u', roles: [], createdAt, expiresAt };
        await store.createSession({ session, refreshHash: 'h0', refreshExpiresAt: tokenExpiresAt });
        expect(await store.isSessionActive('ses_1', expiresAt - 1)).toBe(true);
        expect(await store.isSessionActive('ses_1', expiresAt)).toBe(false);
        const rotateAt = (at: number, hash: string, successorHash: string) =>
          store.rotateRefreshToken({ sessionId: 'ses_1', hash, successorHash, sealedSuccessor: 's', now: at, refreshTtlMs: ttl, reuseIntervalMs: 0 });
        const successorExpiresAt = Math.min(now + ttl, expiresAt);
        expect(await rotateAt(now, 'h0', 'h1')).toEqual({ outcome: 'rotated', session, expiresAt: successorExpiresAt });
        if (successorExpiresAt - 1 > now) expect(await rotateAt(successorExpiresAt - 1, 'h1', 'h2')).toMatchObject({ outcome: 'rotated', session });
        else expect(await rotateAt(successorExpiresAt, 'h1', 'h2')).toEqual({ outcome: 'invalid', why: 'expired' });
      }),
      { numRuns: 300 },
    );
  });
});
