import { newId } from '../../../src/core/ids';
import { changeSecrets, type UserSecrets, type UserSecretStore } from '../../../src/core/user-secrets';
import type { Store } from '../../../src/store/store';
import { HOUR, random, helpers, type Conformance } from './context';

/** The user-secrets port (UserSecretStore): one versioned document per user, compare-and-set. */
export function userSecretsSuite(t: Conformance): void {
  const { addUser } = helpers(t);
  let store: Store;

  describe('user secrets: one versioned document per user, compare-and-set', () => {
    beforeEach(() => ({ store } = t));
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

    test("changeSecrets from two instances, 20 changes of one user's document at once on each: every change lands, none is lost to a race", async () => {
      const user = await addUser();
      // Two views of the store, as two servers over one database: each instance writes in turn, and the two race.
      // (When each change raced on its own, 20 at once on PostgreSQL lost 4 to 8 every round; the memory store answers too fast to race.)
      const instances = [0, 1].map((): UserSecretStore => ({ readUserSecrets: (id) => store.readUserSecrets(id), writeUserSecrets: (id, v, d) => store.writeUserSecrets(id, v, d) }));
      const increment = (doc: UserSecrets) => ({ write: { ...doc, totp: { secret: 'S', confirmedAt: 0, lastStep: (doc.totp?.lastStep ?? 0) + 1 } }, result: doc.totp?.lastStep ?? 0 });
      const seen = await Promise.all(instances.flatMap((instance) => Array.from({ length: 20 }, () => changeSecrets(instance, user.id, () => t.clock.now(), increment))));
      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
      expect((JSON.parse((await store.readUserSecrets(user.id))!.data) as UserSecrets).totp!.lastStep).toBe(40);
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

}
