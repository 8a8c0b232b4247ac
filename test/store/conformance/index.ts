import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../src/clock';
import { newId } from '../../src/core/ids';
import type { BackoffPolicy } from '../../src/core/login-throttle';
import type { NewUser } from '../../src/core/records';
import type { Store } from '../../src/store/store';

const random = { bytes: randomBytes };
export const T0 = Date.UTC(2030, 0, 1);
const HOUR = 3_600_000;
const GRACE = 60_000;

/** What the suite needs of a store under test: made on the suite's clock, with these limits. */
export type MakeStore = (options: { clock: ManualClock; accessGraceMs: number; maxSessionsPerUser: number }) => Promise<Store>;

/**
 * One conformance suite for the Store interface, run against every implementation and topology
 * (memory, Redis, Redis Sentinel, Redis Cluster). Time is the store's own, driven here by a
 * manual clock, so no test sleeps.
 */
export function describeStoreConformance(name: string, makeStore: MakeStore): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    let clock: ManualClock;
    const MAX_SESSIONS = 5;

    beforeEach(async () => {
      clock = new ManualClock(T0);
      store = await makeStore({ clock, accessGraceMs: GRACE, maxSessionsPerUser: MAX_SESSIONS });
    });
    afterEach(() => store.close());

    const newUser = (overrides: Partial<NewUser> = {}): NewUser => ({
      id: newId(random, 'usr'),
      username: `user-${randomBytes(4).toString('hex')}`,
      passwordHash: '$argon2id$x',
      roles: ['admin'],
      disabled: false,
      origin: 'api',
      ...overrides,
    });
    const addUser = async (overrides: Partial<NewUser> = {}) => {
      const user = newUser(overrides);
      expect(await store.createUser(user)).toBe('created');
      return (await store.getUser(user.id))!;
    };
    const session = async (userId: string, hash = 'h0', overrides: { userGeneration?: number; maxAgeMs?: number; refreshTtlMs?: number } = {}) => {
      const sessionId = newId(random, 'ses');
      const result = await store.createSession({
        userId,
        sessionId,
        userGeneration: overrides.userGeneration ?? 0,
        refreshHash: hash,
        refreshTtlMs: overrides.refreshTtlMs ?? HOUR,
        sessionMaxAgeMs: overrides.maxAgeMs ?? 24 * HOUR,
        clientAddress: '10.0.0.1',
        userAgent: 'test-agent/1',
        amr: ['pwd'],
      });
      return { sessionId, result };
    };
    const rotate = (userId: string, sessionId: string, generation: number, hash: string, successorHash: string, tagged = true) =>
      store.rotateRefreshToken({ userId, sessionId, generation, hash, tagged, successorHash, sealedSuccessor: `sealed:${successorHash}`, refreshTtlMs: HOUR, reuseIntervalMs: 10_000 });
    const live = (userId: string, sessionId: string) => store.liveSession(userId, sessionId);

    describe('users', () => {
      test('create, find by name and id; a taken name or id is refused', async () => {
        const user = newUser({ username: 'alice' });
        expect(await store.createUser(user)).toBe('created');
        expect(await store.createUser({ ...user, id: newId(random, 'usr') })).toBe('exists');
        expect(await store.createUser({ ...user, username: 'alice2' })).toBe('exists');
        const found = await store.findUserByUsername('alice');
        expect(found).toEqual({ ...user, createdAt: T0, passwordChangedAt: T0, generation: 0, revision: 1, fileDigest: undefined });
        expect(await store.getUser(user.id)).toEqual(found);
        expect(await store.findUserByUsername('alice2')).toBeUndefined();
        expect(await store.getUser(newId(random, 'usr'))).toBeUndefined();
      });

      test('listUsers: username order, prefix, after, limit; deleted users leave the list', async () => {
        const names = ['bob', 'alice', 'bo', 'carol', 'bobby', 'zoë', 'b'];
        for (const username of names) await addUser({ username });
        const list = async (prefix: string, after: string | undefined, limit: number) => (await store.listUsers({ prefix, after, limit })).map((u) => u.username);
        expect(await list('', undefined, 100)).toEqual([...names].sort());
        expect(await list('b', undefined, 100)).toEqual(['b', 'bo', 'bob', 'bobby']);
        expect(await list('b', 'bo', 100)).toEqual(['bob', 'bobby']);
        expect(await list('', 'bobby', 2)).toEqual(['carol', 'zoë']);
        expect(await list('', 'zoë', 2)).toEqual([]);
        expect(await list('bob', undefined, 1)).toEqual(['bob']);
        expect(await list('x', undefined, 10)).toEqual([]);
        const bob = (await store.findUserByUsername('bob'))!;
        await store.deleteUser(bob.id);
        expect(await list('b', undefined, 100)).toEqual(['b', 'bo', 'bobby']);
      });

      test('updateUser: each change bumps the revision; a password stamps its time; ifRevision guards; unknown is not_found', async () => {
        const user = await addUser();
        clock.advance(5000);
        const changed = await store.updateUser(user.id, { roles: ['ops', 'viewer'], passwordHash: '$argon2id$new', disabled: true });
        expect(changed).toEqual({ outcome: 'updated', user: { ...user, roles: ['ops', 'viewer'], passwordHash: '$argon2id$new', passwordChangedAt: T0 + 5000, disabled: true, revision: 2 } });
        expect(await store.updateUser(user.id, { disabled: false, ifRevision: 1 })).toEqual({ outcome: 'conflict' });
        expect(await store.updateUser(user.id, { disabled: false, ifRevision: 2 })).toMatchObject({ outcome: 'updated', user: { disabled: false, revision: 3 } });
        expect(await store.updateUser(newId(random, 'usr'), { disabled: true })).toEqual({ outcome: 'not_found' });
      });

      test('deleteUser: the user, the name and every session go; the name is free again', async () => {
        const user = await addUser({ username: 'dave' });
        const { sessionId } = await session(user.id);
        expect(await store.deleteUser(user.id)).toMatchObject({ id: user.id, username: 'dave' });
        expect(await store.getUser(user.id)).toBeUndefined();
        expect(await store.findUserByUsername('dave')).toBeUndefined();
        expect(await live(user.id, sessionId)).toBeUndefined();
        expect(await store.deleteUser(user.id)).toBeUndefined();
        expect(await store.createUser(newUser({ username: 'dave' }))).toBe('created');
      });

      test('file users are listed by id for seeding', async () => {
        const fromFile = await addUser({ origin: 'file', fileDigest: 'd1' });
        await addUser();
        expect(await store.fileUserIds()).toEqual([fromFile.id]);
        expect(await store.updateUser(fromFile.id, { fileDigest: 'd2' })).toMatchObject({ user: { fileDigest: 'd2' } });
        await store.deleteUser(fromFile.id);
        expect(await store.fileUserIds()).toEqual([]);
      });
    });

    describe('sessions', () => {
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
    });

    describe('service accounts', () => {
      const secret = (id = newId(random, 'sec')) => ({ type: 'secret' as const, id, hash: `hash-${id}` });
      const addAccount = async (name = `svc-${randomBytes(3).toString('hex')}`, roles: string[] = ['reader']) => {
        const id = newId(random, 'sva');
        const credential = secret();
        expect(await store.createServiceAccount({ id, name, roles, credential })).toBe('created');
        return { id, name, credential };
      };

      test('create, get, names unique, listed in name order with prefix and after', async () => {
        const a = await addAccount('billing');
        await addAccount('reports');
        await addAccount('backup');
        expect(await store.createServiceAccount({ id: newId(random, 'sva'), name: 'billing', roles: [], credential: secret() })).toBe('exists');
        expect(await store.getServiceAccount(a.id)).toEqual({ id: a.id, name: 'billing', roles: ['reader'], disabled: false, createdAt: T0, revision: 1, credentials: [{ ...a.credential, createdAt: T0 }] });
        const names = async (prefix: string, after?: string) => (await store.listServiceAccounts({ prefix, after, limit: 10 })).map((x) => x.name);
        expect(await names('')).toEqual(['backup', 'billing', 'reports']);
        expect(await names('b', 'backup')).toEqual(['billing']);
        expect(await store.getServiceAccount(newId(random, 'sva'))).toBeUndefined();
      });

      test('credentials: added and removed by id and type; duplicates and the cap refused; liveness follows', async () => {
        const a = await addAccount();
        const key = { type: 'key' as const, id: newId(random, 'key'), kid: 'kid-1', thumbprint: 'T'.repeat(43), jwk: '{"kty":"EC"}' };
        clock.advance(1000);
        const added = await store.updateServiceAccount(a.id, { addCredential: key });
        expect(added).toMatchObject({ outcome: 'updated', account: { revision: 2 } });
        expect(added.outcome === 'updated' && added.account.credentials.find((c) => c.id === key.id)).toEqual({ ...key, createdAt: T0 + 1000 });
        // The same key under another kid, and another key under the same kid, are refused apart.
        expect(await store.updateServiceAccount(a.id, { addCredential: { ...key, id: newId(random, 'key'), kid: 'kid-2' } })).toEqual({ outcome: 'credential_exists' });
        expect(await store.updateServiceAccount(a.id, { addCredential: { ...key, id: newId(random, 'key'), thumbprint: 'U'.repeat(43) } })).toEqual({ outcome: 'kid_taken' });
        // A key stored before kids were kept (no thumbprint: its kid is its thumbprint).
        const older = { type: 'key' as const, id: newId(random, 'key'), kid: 'V'.repeat(43), jwk: '{"kty":"EC"}' };
        expect((await store.updateServiceAccount(a.id, { addCredential: older })).outcome).toBe('updated');
        expect(await store.updateServiceAccount(a.id, { addCredential: { ...key, id: newId(random, 'key'), kid: 'kid-3', thumbprint: older.kid } })).toEqual({ outcome: 'credential_exists' });
        expect((await store.updateServiceAccount(a.id, { removeCredential: { id: older.id, type: 'key' } })).outcome).toBe('updated');
        expect(await store.liveCredential(a.id, key.id)).toMatchObject({ id: a.id, username: a.name, roles: ['reader'], revision: 4 });
        expect(await store.updateServiceAccount(a.id, { removeCredential: { id: key.id, type: 'secret' } })).toEqual({ outcome: 'no_such_credential' });
        expect((await store.updateServiceAccount(a.id, { removeCredential: { id: key.id, type: 'key' } })).outcome).toBe('updated');
        expect(await store.liveCredential(a.id, key.id)).toBeUndefined();
        expect(await store.liveCredential(a.id, a.credential.id)).toBeDefined();
        for (let i = 1; i < 10; i++) expect((await store.updateServiceAccount(a.id, { addCredential: secret() })).outcome).toBe('updated');
        expect(await store.updateServiceAccount(a.id, { addCredential: secret() })).toEqual({ outcome: 'too_many_credentials' });
        expect(await store.updateServiceAccount(newId(random, 'sva'), { disabled: true })).toEqual({ outcome: 'not_found' });
      });

      test('roles and disabling show in liveness at once; deleting ends it', async () => {
        const a = await addAccount();
        await store.updateServiceAccount(a.id, { roles: ['admin'] });
        expect(await store.liveCredential(a.id, a.credential.id)).toMatchObject({ roles: ['admin'] });
        await store.updateServiceAccount(a.id, { disabled: true });
        expect(await store.liveCredential(a.id, a.credential.id)).toBeUndefined();
        await store.updateServiceAccount(a.id, { disabled: false });
        expect(await store.liveCredential(a.id, a.credential.id)).toBeDefined();
        expect(await store.deleteServiceAccount(a.id)).toBe(true);
        expect(await store.deleteServiceAccount(a.id)).toBe(false);
        expect(await store.liveCredential(a.id, a.credential.id)).toBeUndefined();
        expect(await store.listServiceAccounts({ prefix: '', after: undefined, limit: 10 })).toEqual([]);
        expect(await store.createServiceAccount({ id: newId(random, 'sva'), name: a.name, roles: [], credential: secret() })).toBe('created');
      });

      test('an assertion id is used once until it expires', async () => {
        const a = await addAccount();
        expect(await store.useAssertion(a.id, 'jti-1', T0 + 60_000)).toBe(true);
        expect(await store.useAssertion(a.id, 'jti-1', T0 + 60_000)).toBe(false);
        expect(await store.useAssertion(a.id, 'jti-2', T0 + 60_000)).toBe(true);
        const other = await addAccount();
        expect(await store.useAssertion(other.id, 'jti-1', T0 + 60_000)).toBe(true);
      });
    });

    describe('username skeletons', () => {
      test('a second user of the same skeleton is refused, with nothing left behind; deleting the holder frees it', async () => {
        const first = newUser({ username: 'alice' });
        expect(await store.createUser(first, { skeleton: 'alice' })).toBe('created');
        const lookalike = newUser({ username: 'al\u00edce' });
        expect(await store.createUser(lookalike, { skeleton: 'alice' })).toBe('confusable');
        expect(await store.getUser(lookalike.id)).toBeUndefined();
        expect(await store.findUserByUsername('al\u00edce')).toBeUndefined();
        expect((await store.listUsers({ prefix: '', after: undefined, limit: 10 })).map((u) => u.username)).toEqual(['alice']);
        // A user without a skeleton claims none (users made before the rule).
        expect(await store.createUser(newUser({ username: 'old-name' }))).toBe('created');
        expect(await store.deleteUser(first.id)).toMatchObject({ id: first.id });
        expect(await store.createUser(lookalike, { skeleton: 'alice' })).toBe('created');
      });
    });

    describe('the last enabled admin', () => {
      const account = async (roles: string[]) => {
        const id = newId(random, 'sva');
        expect(await store.createServiceAccount({ id, name: `svc-${randomBytes(3).toString('hex')}`, roles, credential: { type: 'secret', id: newId(random, 'sec'), hash: 'h' } })).toBe('created');
        return id;
      };

      test('users and service accounts count together; roles, disable and delete of the last are refused, and change nothing', async () => {
        const human = await addUser({ roles: ['admin'] });
        const robot = await account(['admin', 'reader']);
        expect((await store.updateUser(human.id, { roles: ['reader'], keepAnAdmin: true })).outcome).toBe('updated');
        expect(await store.updateServiceAccount(robot, { roles: ['reader'], keepAnAdmin: true })).toEqual({ outcome: 'last_admin' });
        expect(await store.updateServiceAccount(robot, { disabled: true, keepAnAdmin: true })).toEqual({ outcome: 'last_admin' });
        expect(await store.deleteServiceAccount(robot, { keepAnAdmin: true })).toBe('last_admin');
        expect(await store.getServiceAccount(robot)).toMatchObject({ roles: ['admin', 'reader'], disabled: false, revision: 1 });
        // Another admin first, and then the service account may go.
        expect((await store.updateUser(human.id, { roles: ['admin'], keepAnAdmin: true })).outcome).toBe('updated');
        expect(await store.deleteServiceAccount(robot, { keepAnAdmin: true })).toBe(true);
        expect(await store.updateUser(human.id, { disabled: true, keepAnAdmin: true })).toEqual({ outcome: 'last_admin' });
        expect(await store.deleteUser(human.id, { keepAnAdmin: true })).toBe('last_admin');
        expect(await store.getUser(human.id)).toMatchObject({ roles: ['admin'], disabled: false });
        // Changes that take nothing away, and a disabled admin, change nothing of the count.
        expect((await store.updateUser(human.id, { passwordHash: '$argon2id$y', revokeSessions: true, keepAnAdmin: true })).outcome).toBe('updated');
        const dormant = await addUser({ roles: ['admin'], disabled: true });
        expect(await store.updateUser(human.id, { roles: [], keepAnAdmin: true })).toEqual({ outcome: 'last_admin' });
        expect((await store.updateUser(dormant.id, { disabled: false, keepAnAdmin: true })).outcome).toBe('updated');
        expect((await store.updateUser(human.id, { roles: [], keepAnAdmin: true })).outcome).toBe('updated');
      });

      test('without keepAnAdmin (the operator’s users file) the change is made', async () => {
        const human = await addUser({ roles: ['admin'] });
        expect((await store.updateUser(human.id, { roles: [] })).outcome).toBe('updated');
        const again = await addUser({ roles: ['admin'] });
        expect(await store.deleteUser(again.id)).toMatchObject({ id: again.id });
      });

      test('two admins demoting each other at once: one wins, one is refused, one admin stays (ten rounds)', async () => {
        for (let round = 0; round < 10; round++) {
          const [a, b] = [await addUser({ roles: ['admin'] }), await account(['admin'])];
          const outcomes = await Promise.all([store.updateUser(a.id, { roles: [], keepAnAdmin: true }), store.updateServiceAccount(b, { disabled: true, keepAnAdmin: true })]);
          expect(outcomes.map((o) => o.outcome).sort()).toEqual(['last_admin', 'updated']);
          const admins = [(await store.getUser(a.id))!, (await store.getServiceAccount(b))!].filter((r) => r.roles.includes('admin') && !r.disabled);
          expect(admins).toHaveLength(1);
          // Tidy for the next round: the survivor steps down without the rule.
          await store.updateUser(a.id, { roles: [] });
          await store.updateServiceAccount(b, { roles: [] });
        }
      });
    });

    describe('login attempts', () => {
      const policy: BackoffPolicy = { freeFailures: 2, baseDelayMs: 1000, maxDelayMs: 4000, maxFailures: 6, windowMs: 60_000, shortWindowMs: 30_000 };
      const fail = async (key: string) => {
        expect(await store.beginAttempt(key, policy)).toEqual({ allowed: true });
        await store.endAttempt(key, policy, 'failed');
      };

      test('free failures, then a doubling wait, capped; a success clears the key', async () => {
        await fail('acct:alice');
        await fail('acct:alice');
        clock.advance(999);
        expect(await store.beginAttempt('acct:alice', policy)).toEqual({ allowed: false, retryAfterMs: 1 });
        clock.advance(1);
        await fail('acct:alice');
        clock.advance(1999);
        expect(await store.beginAttempt('acct:alice', policy)).toEqual({ allowed: false, retryAfterMs: 1 });
        clock.advance(1);
        await fail('acct:alice');
        expect(await store.beginAttempt('acct:alice', policy)).toEqual({ allowed: false, retryAfterMs: 4000 });
        clock.advance(4000);
        await fail('acct:alice');
        expect(await store.beginAttempt('acct:alice', policy)).toEqual({ allowed: false, retryAfterMs: 4000 }); // capped
        expect(await store.beginAttempt('acct:bob', policy)).toEqual({ allowed: true });
        clock.advance(4000);
        expect(await store.beginAttempt('acct:alice', policy)).toEqual({ allowed: true });
        await store.endAttempt('acct:alice', policy, 'succeeded');
        expect(await store.beginAttempt('acct:alice', policy)).toEqual({ allowed: true });
      });

      test('past maxFailures nothing until the window has passed; released attempts do not count', async () => {
        for (let i = 0; i < 6; i++) {
          await fail('k');
          clock.advance(10_000);
        }
        expect(await store.beginAttempt('k', policy)).toEqual({ allowed: false, retryAfterMs: 50_000 });
        clock.advance(50_000);
        expect(await store.beginAttempt('k', policy)).toEqual({ allowed: true }); // the count expired
        await store.endAttempt('k', policy, 'released');
        for (let i = 0; i < 5; i++) {
          expect(await store.beginAttempt('k', policy)).toEqual({ allowed: true });
          await store.endAttempt('k', policy, 'released');
        }
      });

      test('a count below the free failures is forgotten after the short window', async () => {
        await fail('k');
        await fail('k');
        expect(await store.beginAttempt('k', policy)).toEqual({ allowed: false, retryAfterMs: 1000 }); // two count
        await store.resetAttempts('k');
        await fail('k');
        clock.advance(30_000);
        await fail('k');
        expect(await store.beginAttempt('k', policy)).toEqual({ allowed: true }); // the first was forgotten: one counts
      });

      test('attempts in parallel are throttled like a sequence: in-flight attempts count', async () => {
        const grants = await Promise.all(Array.from({ length: 30 }, () => store.beginAttempt('acct:x', policy)));
        expect(grants.filter((g) => g.allowed)).toHaveLength(2);
        expect(grants.filter((g) => !g.allowed)).toEqual(Array(28).fill({ allowed: false, retryAfterMs: 1000 }));
      });

      test('check and recordFailure: failures only, nothing reserved, nothing written by a check', async () => {
        for (let i = 0; i < 10; i++) expect(await store.checkAttempt('addr:1.2.3.4', policy)).toEqual({ allowed: true });
        await store.recordFailure('addr:1.2.3.4', policy);
        await store.recordFailure('addr:1.2.3.4', policy);
        expect(await store.checkAttempt('addr:1.2.3.4', policy)).toEqual({ allowed: false, retryAfterMs: 1000 });
        await store.resetAttempts('addr:1.2.3.4');
        expect(await store.checkAttempt('addr:1.2.3.4', policy)).toEqual({ allowed: true });
      });
    });

    describe('user secrets: one versioned document per user, compare-and-set', () => {
      test('absent, written at version 0, read back, replaced only at the version read', async () => {
        const user = await addUser();
        expect(await store.readUserSecrets(user.id)).toBeUndefined();
        expect(await store.writeUserSecrets(user.id, 1, '{"a":1}')).toBe('conflict');
        expect(await store.writeUserSecrets(user.id, 0, '{"a":1}')).toBe('written');
        expect(await store.writeUserSecrets(user.id, 0, '{"a":2}')).toBe('conflict');
        const first = (await store.readUserSecrets(user.id))!;
        expect(first).toEqual({ version: expect.any(Number), data: '{"a":1}' });
        expect(first.version).toBeGreaterThan(0);
        expect(await store.writeUserSecrets(user.id, first.version, '{"a":3}')).toBe('written');
        expect(await store.writeUserSecrets(user.id, first.version, '{"a":4}')).toBe('conflict');
        const second = (await store.readUserSecrets(user.id))!;
        expect(second.data).toBe('{"a":3}');
        expect(second.version).not.toBe(first.version);
        expect(await store.writeUserSecrets(user.id, second.version, undefined)).toBe('written');
        expect(await store.readUserSecrets(user.id)).toBeUndefined();
      });

      test('of 20 writers racing on one version, exactly one wins', async () => {
        const user = await addUser();
        await store.writeUserSecrets(user.id, 0, '{}');
        const { version } = (await store.readUserSecrets(user.id))!;
        const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => store.writeUserSecrets(user.id, version, `{"w":${i}}`)));
        expect(outcomes.filter((o) => o === 'written')).toHaveLength(1);
        expect(outcomes.filter((o) => o === 'conflict')).toHaveLength(19);
        expect((await store.readUserSecrets(user.id))!.version).not.toBe(version);
      });

      test('nothing is written for a user that is not there, and the document goes with its user', async () => {
        expect(await store.writeUserSecrets('usr_AAAAAAAAAAAAAAAAAAAAAA', 0, '{}')).toBe('user_gone');
        const user = await addUser();
        await store.writeUserSecrets(user.id, 0, '{"totp":1}');
        expect(await store.deleteUser(user.id)).toBeDefined();
        expect(await store.readUserSecrets(user.id)).toBeUndefined();
        expect(await store.writeUserSecrets(user.id, 1, '{}')).toBe('user_gone');
      });

      test('versions never repeat for an id: a user made again with a deleted one\'s id refuses every version the old document had', async () => {
        const user = await addUser();
        const seen: number[] = [];
        let version = 0;
        for (let i = 0; i < 5; i++) {
          expect(await store.writeUserSecrets(user.id, version, `{"old":${i}}`)).toBe('written');
          version = (await store.readUserSecrets(user.id))!.version;
          seen.push(version);
        }
        expect(await store.deleteUser(user.id)).toBeDefined();
        expect(await store.createUser({ id: user.id, username: user.username, passwordHash: 'h', roles: [], disabled: false, origin: 'api' })).toBe('created');
        const again: number[] = [];
        version = 0;
        for (let i = 0; i < 5; i++) {
          expect(await store.writeUserSecrets(user.id, version, `{"new":${i}}`)).toBe('written');
          version = (await store.readUserSecrets(user.id))!.version;
          again.push(version);
        }
        expect(again.filter((v) => seen.includes(v))).toEqual([]);
        // A compare-and-set decided on the old document (any of its versions) lands nowhere.
        for (const old of seen) expect(await store.writeUserSecrets(user.id, old, '{"stale":true}')).toBe('conflict');
        expect((await store.readUserSecrets(user.id))!.data).toBe('{"new":4}');
      });

      test("a session keeps its amr and reports its login as auth_time through rotations", async () => {
        const user = await addUser();
        const sessionId = newId(random, 'ses');
        const created = await store.createSession({
          userId: user.id,
          sessionId,
          userGeneration: 0,
          refreshHash: 'h0',
          refreshTtlMs: HOUR,
          sessionMaxAgeMs: 24 * HOUR,
          clientAddress: 'a',
          userAgent: 'u',
          amr: ['pwd', 'otp'],
        });
        if (created.outcome !== 'created') throw new Error('not created');
        expect(created.amr).toEqual(['pwd', 'otp']);
        expect(created.authTime).toBe(created.now);
        const rotated = await store.rotateRefreshToken({
          userId: user.id,
          sessionId,
          generation: 0,
          hash: 'h0',
          tagged: true,
          successorHash: 'h1',
          sealedSuccessor: 'sealed',
          refreshTtlMs: HOUR,
          reuseIntervalMs: 10_000,
        });
        if (rotated.outcome !== 'rotated') throw new Error('not rotated');
        expect(rotated.amr).toEqual(['pwd', 'otp']);
        expect(rotated.authTime).toBe(created.authTime);
        const retried = await store.rotateRefreshToken({
          userId: user.id,
          sessionId,
          generation: 0,
          hash: 'h0',
          tagged: true,
          successorHash: 'h1b',
          sealedSuccessor: 'other',
          refreshTtlMs: HOUR,
          reuseIntervalMs: 10_000,
        });
        expect(retried).toMatchObject({ outcome: 'retried', amr: ['pwd', 'otp'], authTime: created.authTime });
      });
    });

    test('ping resolves while the store is up', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
