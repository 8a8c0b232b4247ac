import type { SessionRecord, Store } from '../../src/store/store';

/**
 * One conformance suite for the Store interface, run against every implementation (see
 * memory-store.test.ts). Times are passed in, so no store needs a clock and no test sleeps.
 */
export function describeStoreConformance(name: string, makeStore: () => Promise<Store>): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    const T0 = Date.UTC(2030, 0, 1);
    const HOUR = 3_600_000;
    let n = 0;
    const session = (overrides: Partial<SessionRecord> = {}): SessionRecord => ({
      id: `ses_${++n}`,
      userId: 'usr_1',
      username: 'alice',
      roles: ['admin'],
      createdAt: T0,
      expiresAt: T0 + 24 * HOUR,
      ...overrides,
    });
    // Most tests use one session; `current` is the session the helpers name.
    let current = '';
    const rotate = (hash: string, successorHash: string, now: number, sessionId = current) =>
      store.rotateRefreshToken({ sessionId, hash, successorHash, sealedSuccessor: `sealed:${successorHash}`, now, refreshTtlMs: HOUR, reuseIntervalMs: 10_000 });
    const revoke = (hash: string, now: number, sessionId = current) => store.revokeSessionByRefreshToken({ sessionId, hash }, now);
    const createSession = (s: SessionRecord, refreshHash: string, refreshExpiresAt: number) => {
      current = s.id;
      return store.createSession({ session: s, refreshHash, refreshExpiresAt });
    };

    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(() => store.close());

    test('users: create, find, refuse a duplicate', async () => {
      const user = { id: 'usr_1', username: 'alice', passwordHash: '$argon2id$x', roles: ['admin'], createdAt: T0 };
      expect(await store.createUser(user)).toBe('created');
      expect(await store.createUser({ ...user, id: 'usr_2' })).toBe('exists');
      expect(await store.findUserByUsername('alice')).toEqual(user);
      expect(await store.findUserByUsername('bob')).toBeUndefined();
    });

    test('sessions: created active, inactive at the absolute end', async () => {
      const s = session();
      await createSession(s, 'h0', T0 + HOUR);
      expect(await store.isSessionActive(s.id, T0)).toBe(true);
      expect(await store.isSessionActive(s.id, s.expiresAt - 1)).toBe(true);
      expect(await store.isSessionActive(s.id, s.expiresAt)).toBe(false);
      expect(await store.isSessionActive('ses_unknown', T0)).toBe(false);
    });

    test('rotate: active → rotated, the successor is active with a sliding expiry', async () => {
      const s = session();
      await createSession(s, 'h0', T0 + HOUR);
      expect(await rotate('h0', 'h1', T0 + 1000)).toEqual({ outcome: 'rotated', session: s, expiresAt: T0 + 1000 + HOUR });
      expect(await rotate('h1', 'h2', T0 + HOUR)).toEqual({ outcome: 'rotated', session: s, expiresAt: T0 + 2 * HOUR });
    });

    test('rotate: the successor never outlives the session', async () => {
      const s = session({ expiresAt: T0 + 30 * 60_000 });
      await createSession(s, 'h0', s.expiresAt);
      expect(await rotate('h0', 'h1', T0)).toMatchObject({ outcome: 'rotated', expiresAt: s.expiresAt });
    });

    test('retry within the reuse interval returns the same sealed successor; nothing changes', async () => {
      await createSession(session(), 'h0', T0 + HOUR);
      await rotate('h0', 'h1', T0);
      expect(await rotate('h0', 'h1-fork', T0 + 10_000)).toMatchObject({ outcome: 'retried', sealedSuccessor: 'sealed:h1', expiresAt: T0 + HOUR });
      expect(await rotate('h1-fork', 'x', T0 + 10_000)).toEqual({ outcome: 'invalid', why: 'unknown' });
      expect(await rotate('h1', 'h2', T0 + 10_000)).toMatchObject({ outcome: 'rotated' });
    });

    test.each([
      { name: 'just past the interval', at: 10_001, older: false },
      { name: 'an older generation inside the interval', at: 1, older: true },
    ])('re-use ($name) revokes the whole session', async ({ at, older }) => {
      const s = session();
      await createSession(s, 'h0', T0 + HOUR);
      await rotate('h0', 'h1', T0);
      if (older) await rotate('h1', 'h2', T0);
      expect(await rotate('h0', 'hx', T0 + at)).toEqual({ outcome: 'reused', sessionId: s.id, userId: s.userId });
      expect(await store.isSessionActive(s.id, T0 + at)).toBe(false);
      expect(await rotate(older ? 'h2' : 'h1', 'hy', T0 + at)).toEqual({ outcome: 'invalid', why: 'revoked' });
    });

    test('expired token, ended session, unknown token: invalid, nothing changes', async () => {
      const s = session({ expiresAt: T0 + 2 * HOUR });
      await createSession(s, 'h0', T0 + HOUR);
      expect(await rotate('h0', 'h1', T0 + HOUR)).toEqual({ outcome: 'invalid', why: 'expired' });
      expect(await rotate('nope', 'h1', T0)).toEqual({ outcome: 'invalid', why: 'unknown' });
      expect(await rotate('h0', 'h1', T0 + HOUR - 1)).toMatchObject({ outcome: 'rotated' });
      expect(await rotate('h1', 'h2', T0 + 2 * HOUR)).toEqual({ outcome: 'invalid', why: 'expired' });
    });

    test('concurrent rotations of one token: exactly one winner, the rest get its successor', async () => {
      await createSession(session(), 'h0', T0 + HOUR);
      const results = await Promise.all(Array.from({ length: 25 }, (_, i) => rotate('h0', `h1-${i}`, T0 + 5)));
      const winners = results.filter((r) => r.outcome === 'rotated');
      expect(winners).toHaveLength(1);
      const winner = results.findIndex((r) => r.outcome === 'rotated');
      for (const r of results) if (r.outcome !== 'rotated') expect(r).toMatchObject({ outcome: 'retried', sealedSuccessor: `sealed:h1-${winner}` });
    });

    test('logout: by current or rotated token; unknown does nothing; idempotent', async () => {
      const s = session();
      await createSession(s, 'h0', T0 + HOUR);
      await rotate('h0', 'h1', T0);
      expect(await revoke('unknown', T0)).toBeUndefined();
      expect(await store.isSessionActive(s.id, T0)).toBe(true);
      expect(await revoke('h0', T0)).toEqual({ sessionId: s.id, userId: s.userId });
      expect(await revoke('h1', T0)).toEqual({ sessionId: s.id, userId: s.userId });
      expect(await store.isSessionActive(s.id, T0)).toBe(false);
      expect(await rotate('h1', 'h2', T0)).toEqual({ outcome: 'invalid', why: 'revoked' });
    });

    test('sessions are independent', async () => {
      const a = session();
      const b = session();
      await createSession(a, 'a0', T0 + HOUR);
      await createSession(b, 'b0', T0 + HOUR);
      await revoke('a0', T0, a.id);
      expect(await store.isSessionActive(b.id, T0)).toBe(true);
      expect(await rotate('b0', 'b1', T0, b.id)).toMatchObject({ outcome: 'rotated' });
    });

    test('a token presented under another session id is unknown there', async () => {
      const a = session();
      const b = session();
      await createSession(a, 'a0', T0 + HOUR);
      await createSession(b, 'b0', T0 + HOUR);
      expect(await rotate('a0', 'a1', T0, b.id)).toEqual({ outcome: 'invalid', why: 'unknown' });
      expect(await revoke('a0', T0, b.id)).toBeUndefined();
      expect(await store.isSessionActive(a.id, T0)).toBe(true);
      expect(await store.isSessionActive(b.id, T0)).toBe(true);
    });

    const policy = { freeFailures: 2, baseDelayMs: 1000, maxDelayMs: 4000, maxFailures: 6, windowMs: 60_000 };

    test('login attempts: free failures, then a doubling wait, capped; a success clears the key', async () => {
      const fail = async (now: number) => {
        expect(await store.beginAttempt('acct:alice', now, policy)).toEqual({ allowed: true });
        await store.endAttempt('acct:alice', now, policy, 'failed');
      };
      await fail(T0);
      await fail(T0);
      expect(await store.beginAttempt('acct:alice', T0 + 999, policy)).toEqual({ allowed: false, retryAt: T0 + 1000 });
      await fail(T0 + 1000);
      expect(await store.beginAttempt('acct:alice', T0 + 2999, policy)).toEqual({ allowed: false, retryAt: T0 + 3000 });
      await fail(T0 + 3000);
      expect(await store.beginAttempt('acct:alice', T0 + 3001, policy)).toEqual({ allowed: false, retryAt: T0 + 7000 });
      await fail(T0 + 7000);
      expect(await store.beginAttempt('acct:alice', T0 + 7001, policy)).toEqual({ allowed: false, retryAt: T0 + 11_000 }); // capped at 4 s
      expect(await store.beginAttempt('acct:bob', T0 + 7001, policy)).toEqual({ allowed: true });
      expect(await store.beginAttempt('acct:alice', T0 + 11_000, policy)).toEqual({ allowed: true });
      await store.endAttempt('acct:alice', T0 + 11_000, policy, 'succeeded');
      expect(await store.beginAttempt('acct:alice', T0 + 11_000, policy)).toEqual({ allowed: true });
    });

    test('login attempts: past maxFailures no attempt until the window has passed; released attempts do not count', async () => {
      for (let i = 0; i < 6; i++) {
        const now = T0 + i * 10_000;
        expect(await store.beginAttempt('k', now, policy)).toEqual({ allowed: true });
        await store.endAttempt('k', now, policy, 'failed');
      }
      expect(await store.beginAttempt('k', T0 + 100_000, policy)).toEqual({ allowed: false, retryAt: T0 + 50_000 + 60_000 });
      expect(await store.beginAttempt('k', T0 + 110_000, policy)).toEqual({ allowed: true }); // the count expired
      await store.endAttempt('k', T0 + 110_000, policy, 'released');
      for (let i = 0; i < 5; i++) {
        expect(await store.beginAttempt('k', T0 + 110_000, policy)).toEqual({ allowed: true });
        await store.endAttempt('k', T0 + 110_000, policy, 'released');
      }
    });

    test('login attempts in parallel are throttled like a sequence: in-flight attempts count', async () => {
      const grants = await Promise.all(Array.from({ length: 30 }, () => store.beginAttempt('addr:1.2.3.4', T0, policy)));
      expect(grants.filter((g) => g.allowed)).toHaveLength(2);
      expect(grants.filter((g) => !g.allowed)).toEqual(Array(28).fill({ allowed: false, retryAt: T0 + 1000 }));
    });

    test('ping resolves while the store is up', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
