import type { ManualClock } from '../../../src/clock';
import { newId } from '../../../src/core/ids';
import type { Store } from '../../../src/store/store';
import { T0, HOUR, GRACE, MAX_SESSIONS, random, helpers, type Conformance } from './context';

/** The session port (SessionStore, SessionLiveness): create, rotate with reuse detection, revoke, liveness. */
export function sessionsSuite(t: Conformance): void {
  const { addUser, session, rotate, live } = helpers(t);
  let store: Store;
  let clock: ManualClock;

  describe('sessions', () => {
    beforeEach(() => ({ store, clock } = t));
    test('created with the store’s times and the live user; active until the absolute end', async () => {
      const user = await addUser();
      const { sessionId, result } = await session(user.id, 'h0', { maxAgeMs: 2 * HOUR, refreshTtlMs: 3 * HOUR });
      const liveUser = { id: user.id, username: user.username, roles: ['admin'], revision: 1 };
      expect(result).toMatchObject({ outcome: 'created', now: T0, expiresAt: T0 + 2 * HOUR, refreshExpiresAt: T0 + 2 * HOUR, user: liveUser });
      expect(await live(user.id, sessionId)).toMatchObject(liveUser);
      clock.advance(2 * HOUR - 1);
      expect(await live(user.id, sessionId)).toBeDefined();
      clock.advance(1);
      expect(await live(user.id, sessionId)).toBeUndefined();
      expect(await live(newId(random, 'usr'), sessionId)).toBeUndefined();
    });

    test('an idle session outlives its refresh token by the grace only (its access tokens), then ends', async () => {
      const user = await addUser();
      const { sessionId } = await session(user.id);
      clock.advance(HOUR + GRACE - 1);
      expect(await live(user.id, sessionId)).toBeDefined();
      clock.advance(1);
      expect(await live(user.id, sessionId)).toBeUndefined();
    });

    test('refused for a disabled, deleted, or signed-out-everywhere user', async () => {
      const user = await addUser();
      expect((await session(user.id, 'h', { userGeneration: 0 })).result.outcome).toBe('created');
      await store.updateUser(user.id, { revokeSessions: true });
      expect((await session(user.id, 'h', { userGeneration: 0 })).result).toEqual({ outcome: 'refused', why: 'revoked' });
      expect((await session(user.id, 'h', { userGeneration: 1 })).result.outcome).toBe('created');
      await store.updateUser(user.id, { disabled: true });
      expect((await session(user.id, 'h', { userGeneration: 1 })).result).toEqual({ outcome: 'refused', why: 'disabled' });
      await store.deleteUser(user.id);
      expect((await session(user.id, 'h', { userGeneration: 1 })).result).toEqual({ outcome: 'refused', why: 'user_gone' });
    });

    test('rotate: the current token rotates, its successor is current, the expiry slides, roles are today’s', async () => {
      const user = await addUser();
      const { sessionId } = await session(user.id);
      clock.advance(1000);
      expect(await rotate(user.id, sessionId, 0, 'h0', 'h1')).toMatchObject({
        outcome: 'rotated',
        now: T0 + 1000,
        expiresAt: T0 + 24 * HOUR,
        refreshExpiresAt: T0 + 1000 + HOUR,
        user: { id: user.id, username: user.username, roles: ['admin'], revision: 1 },
      });
      await store.updateUser(user.id, { roles: ['viewer'] });
      expect(await rotate(user.id, sessionId, 1, 'h1', 'h2')).toMatchObject({ outcome: 'rotated', user: { roles: ['viewer'], revision: 2 } });
      expect(await live(user.id, sessionId)).toMatchObject({ roles: ['viewer'] });
    });

    test('a retry of the previous token within the reuse interval gets the same sealed successor; nothing changes', async () => {
      const user = await addUser();
      const { sessionId } = await session(user.id);
      await rotate(user.id, sessionId, 0, 'h0', 'h1');
      clock.advance(10_000);
      expect(await rotate(user.id, sessionId, 0, 'h0', 'h1-fork')).toMatchObject({ outcome: 'retried', sealedSuccessor: 'sealed:h1', refreshExpiresAt: T0 + HOUR });
      expect(await rotate(user.id, sessionId, 1, 'h1-fork', 'x')).toEqual({ outcome: 'invalid', why: 'unknown' });
      expect(await rotate(user.id, sessionId, 1, 'h1', 'h2')).toMatchObject({ outcome: 'rotated' });
    });

    test.each([
      { name: 'the previous token just past the interval', advance: 10_001, generations: 1, presented: 0 },
      { name: 'an older generation inside the interval', advance: 1, generations: 2, presented: 0 },
      { name: 'a generation long gone', advance: 1, generations: 50, presented: 3 },
    ])('re-use ($name) ends the whole session', async ({ advance, generations, presented }) => {
      const user = await addUser();
      const { sessionId } = await session(user.id);
      for (let g = 0; g < generations; g++) await rotate(user.id, sessionId, g, `h${g}`, `h${g + 1}`);
      clock.advance(advance);
      expect(await rotate(user.id, sessionId, presented, `h${presented}`, 'hx')).toEqual({ outcome: 'reused', sessionId, userId: user.id });
      expect(await live(user.id, sessionId)).toBeUndefined();
      expect((await rotate(user.id, sessionId, generations, `h${generations}`, 'hy')).outcome).toBe('invalid');
    });

    test('unknown, forged and expired tokens: invalid, nothing changes', async () => {
      const user = await addUser();
      const { sessionId } = await session(user.id, 'h0', { maxAgeMs: 2 * HOUR });
      expect(await rotate(user.id, sessionId, 0, 'not-the-hash', 'h1')).toEqual({ outcome: 'invalid', why: 'unknown' });
      expect(await rotate(user.id, sessionId, 7, 'h7', 'h8')).toEqual({ outcome: 'invalid', why: 'unknown' });
      expect(await rotate(user.id, newId(random, 'ses'), 0, 'h0', 'h1')).toEqual({ outcome: 'invalid', why: 'unknown' });
      expect(await live(user.id, sessionId)).toBeDefined();
      clock.advance(HOUR);
      expect(await rotate(user.id, sessionId, 0, 'h0', 'h1')).toEqual({ outcome: 'invalid', why: 'expired' });
    });

    test('a token whose tag key was retired: current by its hash it still rotates; older it proves nothing', async () => {
      const user = await addUser();
      const { sessionId } = await session(user.id);
      expect((await rotate(user.id, sessionId, 0, 'h0', 'h1', false)).outcome).toBe('rotated');
      expect((await rotate(user.id, sessionId, 0, 'h0', 'hz', false)).outcome).toBe('retried');
      expect((await rotate(user.id, sessionId, 1, 'h1', 'h2', false)).outcome).toBe('rotated');
      clock.advance(60_000);
      expect(await rotate(user.id, sessionId, 0, 'h0', 'hx', false)).toEqual({ outcome: 'invalid', why: 'unknown' });
      expect(await live(user.id, sessionId)).toBeDefined();
      expect(await rotate(user.id, sessionId, 0, 'h0', 'hx', true)).toMatchObject({ outcome: 'reused' });
    });

    test('concurrent rotations of one token: exactly one winner, the rest get its successor', async () => {
      const user = await addUser();
      const { sessionId } = await session(user.id);
      const results = await Promise.all(Array.from({ length: 25 }, (_, i) => rotate(user.id, sessionId, 0, 'h0', `h1-${i}`)));
      const winner = results.findIndex((r) => r.outcome === 'rotated');
      expect(results.filter((r) => r.outcome === 'rotated')).toHaveLength(1);
      for (const r of results) if (r.outcome !== 'rotated') expect(r).toMatchObject({ outcome: 'retried', sealedSuccessor: `sealed:h1-${winner}` });
    });

    test('logout by the current or an older token; a forged or future one does nothing; idempotent', async () => {
      const user = await addUser();
      const { sessionId } = await session(user.id);
      await rotate(user.id, sessionId, 0, 'h0', 'h1');
      const token = (generation: number, hash: string, tagged = true) => ({ userId: user.id, sessionId, generation, hash, tagged });
      expect(await store.revokeSessionByRefreshToken(token(1, 'wrong'))).toBeUndefined();
      expect(await store.revokeSessionByRefreshToken(token(2, 'h2'))).toBeUndefined();
      expect(await store.revokeSessionByRefreshToken(token(0, 'h0', false))).toBeUndefined(); // an old token without a tag we hold
      expect(await live(user.id, sessionId)).toBeDefined();
      expect(await store.revokeSessionByRefreshToken(token(0, 'h0'))).toEqual({ sessionId, userId: user.id });
      expect(await live(user.id, sessionId)).toBeUndefined();
      expect(await store.revokeSessionByRefreshToken(token(1, 'h1'))).toBeUndefined();
      expect((await rotate(user.id, sessionId, 1, 'h1', 'h2')).outcome).toBe('invalid');
    });

    test('sessions of one user are independent, and a session is only ever its own user’s', async () => {
      const alice = await addUser();
      const bob = await addUser();
      const a = await session(alice.id);
      const b = await session(alice.id);
      const other = await session(bob.id);
      expect(await store.revokeSession(bob.id, a.sessionId)).toBe(false);
      expect(await live(bob.id, a.sessionId)).toBeUndefined();
      expect(await rotate(bob.id, a.sessionId, 0, 'h0', 'h1')).toEqual({ outcome: 'invalid', why: 'unknown' });
      expect(await store.revokeSession(alice.id, a.sessionId)).toBe(true);
      expect(await store.revokeSession(alice.id, a.sessionId)).toBe(false);
      expect(await live(alice.id, b.sessionId)).toBeDefined();
      expect(await live(bob.id, other.sessionId)).toBeDefined();
    });

    test('listSessions: the user’s active sessions, newest first, with what was seen at login', async () => {
      const user = await addUser();
      const first = await session(user.id);
      clock.advance(1000);
      const second = await session(user.id);
      clock.advance(1000);
      await rotate(user.id, first.sessionId, 0, 'h0', 'h1');
      const third = await session(user.id);
      await store.revokeSession(user.id, third.sessionId);
      const sessions = await store.listSessions(user.id);
      expect(sessions.map((s) => s.id)).toEqual([second.sessionId, first.sessionId]);
      expect(sessions[1]).toEqual({
        id: first.sessionId,
        userId: user.id,
        createdAt: T0,
        lastRefreshedAt: T0 + 2000,
        expiresAt: T0 + 24 * HOUR,
        refreshExpiresAt: T0 + 2000 + HOUR,
        clientAddress: '10.0.0.1',
        userAgent: 'test-agent/1',
      });
      expect(await store.listSessions(newId(random, 'usr'))).toEqual([]);
    });

    test('exportSessions: each active session as stored (hashes, the previous token, times, amr); ended ones are not', async () => {
      const user = await addUser();
      const first = await session(user.id);
      clock.advance(1000);
      const second = await session(user.id);
      await rotate(user.id, first.sessionId, 0, 'h0', 'h1');
      const third = await session(user.id);
      await store.revokeSession(user.id, third.sessionId);
      const exported = await store.exportSessions(user.id);
      expect([...exported].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))).toEqual([
        {
          id: first.sessionId,
          userId: user.id,
          userGeneration: 0,
          generation: 1,
          tokenHash: 'h1',
          previous: { hash: 'h0', rotatedAt: T0 + 1000, sealed: 'sealed:h1' },
          createdAt: T0,
          lastRefreshedAt: T0 + 1000,
          expiresAt: T0 + 24 * HOUR,
          tokenExpiresAt: T0 + 1000 + HOUR,
          clientAddress: '10.0.0.1',
          userAgent: 'test-agent/1',
          amr: ['pwd'],
        },
        {
          id: second.sessionId,
          userId: user.id,
          userGeneration: 0,
          generation: 0,
          tokenHash: 'h0',
          previous: undefined,
          createdAt: T0 + 1000,
          lastRefreshedAt: T0 + 1000,
          expiresAt: T0 + 1000 + 24 * HOUR,
          tokenExpiresAt: T0 + 1000 + HOUR,
          clientAddress: '10.0.0.1',
          userAgent: 'test-agent/1',
          amr: ['pwd'],
        },
      ]);
      expect(await store.exportSessions(newId(random, 'usr'))).toEqual([]);
    });

    test('revoke-all ends every session at once; a kept session stays, across generations', async () => {
      const user = await addUser();
      const a = await session(user.id);
      const b = await session(user.id);
      const kept = await session(user.id);
      const result = await store.updateUser(user.id, { revokeSessions: true, keepSession: kept.sessionId });
      expect(result).toMatchObject({ outcome: 'updated', user: { generation: 1 } });
      expect(await live(user.id, a.sessionId)).toBeUndefined();
      expect(await live(user.id, b.sessionId)).toBeUndefined();
      expect(await live(user.id, kept.sessionId)).toBeDefined();
      expect(await rotate(user.id, a.sessionId, 0, 'h0', 'h1')).toEqual({ outcome: 'invalid', why: 'revoked' });
      expect((await rotate(user.id, kept.sessionId, 0, 'h0', 'h1')).outcome).toBe('rotated');
      expect((await store.listSessions(user.id)).map((s) => s.id)).toEqual([kept.sessionId]);
      await store.updateUser(user.id, { revokeSessions: true });
      expect(await live(user.id, kept.sessionId)).toBeUndefined();
    });

    test('disabling ends every session; enabling again does not bring them back', async () => {
      const user = await addUser();
      const s = await session(user.id);
      await store.updateUser(user.id, { disabled: true, revokeSessions: true });
      expect(await live(user.id, s.sessionId)).toBeUndefined();
      expect(await rotate(user.id, s.sessionId, 0, 'h0', 'h1')).toEqual({ outcome: 'invalid', why: 'revoked' });
      await store.updateUser(user.id, { disabled: false });
      expect(await live(user.id, s.sessionId)).toBeUndefined();
    });

    test(`at most ${MAX_SESSIONS} active sessions a user: a new login ends the oldest`, async () => {
      const user = await addUser();
      const ids: string[] = [];
      for (let i = 0; i < MAX_SESSIONS + 2; i++) {
        ids.push((await session(user.id)).sessionId);
        clock.advance(1);
      }
      expect((await store.listSessions(user.id)).map((s) => s.id)).toEqual(ids.slice(2).reverse());
      expect(await live(user.id, ids[0]!)).toBeUndefined();
      expect(await live(user.id, ids[1]!)).toBeUndefined();
    });

    test('sessions that have ended do not count toward the cap: a login keeps every active one', async () => {
      const user = await addUser();
      const kept: string[] = [];
      for (let i = 0; i < 2; i++) {
        kept.push((await session(user.id, 'h0', { refreshTtlMs: 3 * HOUR })).sessionId);
        clock.advance(1);
      }
      // The newest ones end first: counted by age, the cap would end an active one.
      for (let i = 0; i < MAX_SESSIONS - 2; i++) {
        await session(user.id, 'h0', { maxAgeMs: HOUR });
        clock.advance(1);
      }
      clock.advance(HOUR);
      const added = (await session(user.id)).sessionId;
      expect((await store.listSessions(user.id)).map((s) => s.id)).toEqual([added, ...kept.reverse()]);
    });
  });

}
