import { newId } from '../../../src/core/ids';
import type { ApiKeyRecord, Store } from '../../../src/store/store';
import { helpers, HOUR, random, T0, type Conformance } from './context';

/** The API-key port: kept by id, listed by owner, limited per owner, live only while owner and key are. */
export function apiKeysSuite(t: Conformance): void {
  let store: Store;
  const { addUser } = helpers(t);
  const key = (ownerId: string, overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
    id: newId(random, 'apk'),
    ownerId,
    name: 'ci',
    roles: ['admin'],
    hash: 'h'.repeat(43),
    createdAt: T0,
    expiresAt: T0 + HOUR,
    ownerGeneration: 0,
    ...overrides,
  });

  describe('API keys', () => {
    beforeEach(() => ({ store } = t));

    test('created, read, listed, touched, revoked by its owner only', async () => {
      const alice = await addUser();
      const bob = await addUser();
      const k = key(alice.id);
      expect(await store.createApiKey(k, 5)).toBe('created');
      expect(await store.getApiKey(k.id)).toEqual(k);
      expect((await store.listApiKeys(alice.id)).map((x) => x.id)).toEqual([k.id]);
      expect(await store.listApiKeys(bob.id)).toEqual([]);
      await store.touchApiKey(k.id, T0 + 5000);
      expect((await store.getApiKey(k.id))?.lastUsedAt).toBe(T0 + 5000);
      expect(await store.revokeApiKey(bob.id, k.id)).toBe(false);
      expect(await store.revokeApiKey(alice.id, k.id)).toBe(true);
      expect(await store.getApiKey(k.id)).toBeUndefined();
      expect(await store.revokeApiKey(alice.id, k.id)).toBe(false);
    });

    test('at most maxPerOwner keys an owner; no key for an owner that is not there', async () => {
      const alice = await addUser();
      for (let i = 0; i < 3; i++) expect(await store.createApiKey(key(alice.id, { createdAt: T0 + i }), 3)).toBe('created');
      expect(await store.createApiKey(key(alice.id), 3)).toBe('limit');
      expect(await store.createApiKey(key(newId(random, 'usr')), 3)).toBe('owner_gone');
      expect((await store.listApiKeys(alice.id)).map((k) => k.createdAt)).toEqual([T0, T0 + 1, T0 + 2]);
    });

    test('live while the owner is enabled and nothing has ended all their sessions since; not for another owner', async () => {
      const alice = await addUser();
      const k = key(alice.id, { ownerGeneration: alice.generation });
      await store.createApiKey(k, 5);
      expect(await store.liveApiKey(alice.id, k.id)).toMatchObject({ id: alice.id, username: alice.username, roles: ['admin'] });
      expect(await store.liveApiKey(newId(random, 'usr'), k.id)).toBeUndefined();
      await store.updateUser(alice.id, { disabled: true });
      expect(await store.liveApiKey(alice.id, k.id)).toBeUndefined();
      await store.updateUser(alice.id, { disabled: false });
      expect(await store.liveApiKey(alice.id, k.id)).toBeDefined();
      await store.updateUser(alice.id, { passwordHash: '$argon2id$new', revokeSessions: true });
      expect(await store.liveApiKey(alice.id, k.id)).toBeUndefined();
    });
  });
}
