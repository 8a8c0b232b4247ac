import { randomBytes } from 'node:crypto';
import { newId } from '../../../src/core/ids';
import type { Store } from '../../../src/store/store';
import { helpers, random, type Conformance } from './context';

/**
 * The passkey port: ceremonies are single use (one taker among concurrent ones, on every
 * instance) and expire; a credential id belongs to one user.
 */
export function passkeysSuite(t: Conformance): void {
  let store: Store;
  const { addUser } = helpers(t);
  const ceremonyId = () => newId(random, 'pkc');
  const credentialId = () => randomBytes(32).toString('base64url');

  describe('passkeys', () => {
    beforeEach(() => ({ store } = t));

    test('a ceremony is taken once; an unknown one is undefined', async () => {
      const id = ceremonyId();
      await store.putCeremony(id, '{"challenge":"c1"}', 60_000);
      expect(await store.takeCeremony(id)).toBe('{"challenge":"c1"}');
      expect(await store.takeCeremony(id)).toBeUndefined();
      expect(await store.takeCeremony(ceremonyId())).toBeUndefined();
    });

    test('of ten concurrent takers, one gets the ceremony', async () => {
      const id = ceremonyId();
      await store.putCeremony(id, 'body', 60_000);
      const taken = await Promise.all(Array.from({ length: 10 }, () => store.takeCeremony(id)));
      expect(taken.filter((b) => b === 'body')).toHaveLength(1);
    });

    test('a ceremony past its time is gone', async () => {
      const id = ceremonyId();
      await store.putCeremony(id, 'body', 50);
      // Redis keeps time by its own clock (PX); the others by the store's clock.
      t.clock.advance(51);
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect(await store.takeCeremony(id)).toBeUndefined();
    });

    test('a credential id belongs to one user: linked again by its owner, taken for another, unlinked only by its owner', async () => {
      const alice = await addUser();
      const bob = await addUser();
      const id = credentialId();
      expect(await store.passkeyOwner(id)).toBeUndefined();
      expect(await store.linkPasskey(id, alice.id)).toBe('linked');
      expect(await store.linkPasskey(id, alice.id)).toBe('linked');
      expect(await store.linkPasskey(id, bob.id)).toBe('taken');
      expect(await store.passkeyOwner(id)).toBe(alice.id);
      await store.unlinkPasskey(id, bob.id);
      expect(await store.passkeyOwner(id)).toBe(alice.id);
      await store.unlinkPasskey(id, alice.id);
      expect(await store.passkeyOwner(id)).toBeUndefined();
      expect(await store.linkPasskey(id, bob.id)).toBe('linked');
    });

    test('two users racing for one credential id: one links it', async () => {
      const users = await Promise.all([addUser(), addUser(), addUser()]);
      const id = credentialId();
      const outcomes = await Promise.all(users.map((u) => store.linkPasskey(id, u.id)));
      expect(outcomes.filter((o) => o === 'linked')).toHaveLength(1);
      expect(users.map((u) => u.id)).toContain(await store.passkeyOwner(id));
    });
  });
}
