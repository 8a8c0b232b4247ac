import { ACCOUNT_POLICY, ADDRESS_POLICY } from '../../src/core/login-throttle';
import { OPERATIONS } from '../../src/store/guarded-store';
import { MaintenanceSwitch, READ_ONLY, READ_OPERATIONS, refuseWritesDuring } from '../../src/store/maintenance-guard';
import type { Store } from '../../src/store/store';
import { memoryStore } from '../helpers/stores';

/** A store whose every operation only records that it was reached. */
function recordingStore(): { store: Store; reached: string[] } {
  const reached: string[] = [];
  const store = Object.fromEntries(OPERATIONS.map((name) => [name, () => (reached.push(name), Promise.resolve(undefined))]));
  return { store: store as unknown as Store, reached };
}

describe('refuseWritesDuring (grpc-auth maintenance on)', () => {
  const writes = OPERATIONS.filter((name) => !READ_OPERATIONS.has(name));

  test('the operations served during a maintenance are exactly these reads', () => {
    expect([...READ_OPERATIONS].filter((name) => !(OPERATIONS as readonly string[]).includes(name))).toEqual([]);
    expect(writes).toEqual(expect.arrayContaining(['createUser', 'createSession', 'rotateRefreshToken', 'beginAttempt', 'beginGuardedAttempt', 'endAttempt', 'useAssertion', 'takeCeremony']));
    expect(writes).not.toContain('checkAttempt');
  });

  test.each(OPERATIONS.map((name) => ({ name, read: READ_OPERATIONS.has(name) })))('$name with the switch on: served $read', async ({ name, read }) => {
    const { store, reached } = recordingStore();
    const maintenance = new MaintenanceSwitch();
    maintenance.on = true;
    const call = (refuseWritesDuring(store, maintenance) as unknown as Record<string, () => Promise<unknown>>)[name]!();
    if (read) {
      await expect(call).resolves.toBeUndefined();
      expect(reached).toEqual([name]);
    } else {
      await expect(call).rejects.toMatchObject({ code: 'unavailable', message: READ_ONLY });
      expect(reached).toEqual([]);
    }
  });

  test('with the switch off every operation reaches the store', async () => {
    const { store, reached } = recordingStore();
    const guarded = refuseWritesDuring(store, new MaintenanceSwitch()) as unknown as Record<string, () => Promise<unknown>>;
    for (const name of OPERATIONS) await guarded[name]!();
    expect(reached).toEqual([...OPERATIONS]);
  });

  test('a throttled call from a held-back address is refused UNAVAILABLE (the reservation writes), and nothing is written; its check still answers', async () => {
    const inner = memoryStore();
    const address = 'addr:203.0.113.7';
    for (let i = 0; i < ADDRESS_POLICY.freeFailures; i++) await inner.recordFailure(address, ADDRESS_POLICY);
    const maintenance = new MaintenanceSwitch();
    const store = refuseWritesDuring(inner, maintenance);
    expect(await store.checkAttempt(address, ADDRESS_POLICY)).toMatchObject({ allowed: false });
    maintenance.on = true;
    await expect(store.beginGuardedAttempt('acct:x', ACCOUNT_POLICY, { key: address, policy: ADDRESS_POLICY })).rejects.toMatchObject({ code: 'unavailable', message: READ_ONLY });
    // Reads go on: the address's refusal is still what a check answers, and the account has nothing reserved.
    expect(await store.checkAttempt(address, ADDRESS_POLICY)).toMatchObject({ allowed: false });
    // Nothing was reserved for the account: all its free attempts are there.
    maintenance.on = false;
    for (let i = 0; i < ACCOUNT_POLICY.freeFailures; i++) expect(await store.beginAttempt('acct:x', ACCOUNT_POLICY)).toEqual({ allowed: true });
    expect(await store.beginAttempt('acct:x', ACCOUNT_POLICY)).toMatchObject({ allowed: false });
  });
});
