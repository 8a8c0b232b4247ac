import { randomBytes } from 'node:crypto';
import { newId } from '../../../src/core/ids';
import type { Store } from '../../../src/store/store';
import { random, helpers, type Conformance } from './context';

/** The rule users and service accounts share: the last enabled admin cannot be removed, disabled or demoted. */
export function lastAdminSuite(t: Conformance): void {
  const { addUser } = helpers(t);
  let store: Store;

  describe('the last enabled admin', () => {
    beforeEach(() => ({ store } = t));
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

}
