import type { ManualClock } from '../../../src/clock';
import { newId } from '../../../src/core/ids';
import type { Store } from '../../../src/store/store';
import { T0, random, helpers, type Conformance } from './context';

/** The users port (AccountStore): create, find, list, update, delete, file users, username skeletons. */
export function usersSuite(t: Conformance): void {
  const { newUser, addUser, session, live } = helpers(t);
  let store: Store;
  let clock: ManualClock;

  describe('users', () => {
    beforeEach(() => ({ store, clock } = t));
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

  describe('username skeletons', () => {
    beforeEach(() => ({ store, clock } = t));
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

}
