import { randomBytes } from 'node:crypto';
import type { ManualClock } from '../../../src/clock';
import { newId } from '../../../src/core/ids';
import type { Store } from '../../../src/store/store';
import { T0, random, type Conformance } from './context';

/** The service-account port: accounts, their credentials, assertion ids. */
export function serviceAccountsSuite(t: Conformance): void {
  let store: Store;
  let clock: ManualClock;

  describe('service accounts', () => {
    beforeEach(() => ({ store, clock } = t));
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

}
