import type { ManualClock } from '../../../src/clock';
import type { BackoffPolicy } from '../../../src/core/login-throttle';
import type { Store } from '../../../src/store/store';
import type { Conformance } from './context';

/** The login-attempt port (AttemptStore): backoff, in-flight counts, windows, reset. */
export function attemptsSuite(t: Conformance): void {
  let store: Store;
  let clock: ManualClock;

  describe('login attempts', () => {
    beforeEach(() => ({ store, clock } = t));
    const policy: BackoffPolicy = { freeFailures: 2, baseDelayMs: 1000, maxDelayMs: 4000, maxFailures: 6, windowMs: 60_000, shortWindowMs: 30_000, inFlightLeaseMs: 20_000 };
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

    test('attempts whose ends never came stop counting when the newest one\'s lease runs out', async () => {
      // Six logins whose ends were lost (the store failed on them, the instance died): as six
      // failures, they reach maxFailures and would hold the key back for the whole window.
      for (let i = 0; i < 6; i++) {
        expect(await store.beginAttempt('acct:y', policy)).toEqual({ allowed: true });
        clock.advance(4000);
      }
      expect(await store.beginAttempt('acct:y', policy)).toEqual({ allowed: false, retryAfterMs: 36_000 });
      // The newest began 4 s ago; its lease (20 s) ends 16 s from now, and with it every one of them.
      clock.advance(15_999);
      expect(await store.beginAttempt('acct:y', policy)).toMatchObject({ allowed: false });
      clock.advance(1);
      expect(await store.beginAttempt('acct:y', policy)).toEqual({ allowed: true });
      // Failures are not leased: two, and the next attempt waits.
      await store.endAttempt('acct:y', policy, 'failed');
      await fail('acct:y');
      expect(await store.beginAttempt('acct:y', policy)).toEqual({ allowed: false, retryAfterMs: 1000 });
    });

    test('check and recordFailure: failures only, nothing reserved, nothing written by a check', async () => {
      for (let i = 0; i < 10; i++) expect(await store.checkAttempt('addr:1.2.3.4', policy)).toEqual({ allowed: true });
      await store.recordFailure('addr:1.2.3.4', policy);
      await store.recordFailure('addr:1.2.3.4', policy);
      expect(await store.checkAttempt('addr:1.2.3.4', policy)).toEqual({ allowed: false, retryAfterMs: 1000 });
      await store.resetAttempts('addr:1.2.3.4');
      expect(await store.checkAttempt('addr:1.2.3.4', policy)).toEqual({ allowed: true });
    });

    describe('a begin with a guard (the address asked in the same operation)', () => {
      const addressPolicy: BackoffPolicy = { ...policy, freeFailures: 3 };
      const guard = { key: 'addr:5.6.7.8', policy: addressPolicy };
      const failAddress = (n: number) => Promise.all(Array.from({ length: n }, () => store.recordFailure(guard.key, addressPolicy)));

      // [case, the address's failures, the account's failures, the answer]
      test.each([
        ['neither holds back', 0, 0, { allowed: true }],
        ["the address's failures are still free", 2, 0, { allowed: true }],
        ['the address holds back: its wait is the answer', 3, 0, { allowed: false, retryAfterMs: 1000 }],
        ['the address holds back longer than the account', 5, 2, { allowed: false, retryAfterMs: 4000 }],
        ['the account holds back, the address does not', 0, 2, { allowed: false, retryAfterMs: 1000 }],
      ] as const)('%s', async (_case, addressFailures, accountFailures, answer) => {
        await failAddress(addressFailures);
        for (let i = 0; i < accountFailures; i++) await fail('acct:g');
        expect(await store.beginAttempt('acct:g', policy, guard)).toEqual(answer);
        // The guard's key is only read: its count and wait are as they were.
        expect(await store.checkAttempt(guard.key, addressPolicy)).toEqual(addressFailures >= 3 ? { allowed: false, retryAfterMs: 1000 * 2 ** (addressFailures - 3) } : { allowed: true });
      });

      test('a refusal by the guard reserves nothing on the key; an allowed begin reserves as without a guard', async () => {
        await failAddress(3);
        for (let i = 0; i < 5; i++) expect(await store.beginAttempt('acct:h', policy, guard)).toEqual({ allowed: false, retryAfterMs: 1000 });
        // Nothing was reserved: the two free attempts are both still there.
        expect(await store.beginAttempt('acct:h', policy)).toEqual({ allowed: true });
        expect(await store.beginAttempt('acct:h', policy)).toEqual({ allowed: true });
        expect(await store.beginAttempt('acct:h', policy)).toEqual({ allowed: false, retryAfterMs: 1000 });
        // Once the address's wait has passed, a guarded begin reserves in flight like any other.
        clock.advance(1000);
        await store.endAttempt('acct:h', policy, 'released');
        await store.endAttempt('acct:h', policy, 'released');
        expect(await store.beginAttempt('acct:h', policy, guard)).toEqual({ allowed: true });
        expect(await store.beginAttempt('acct:h', policy, guard)).toEqual({ allowed: true });
        expect(await store.beginAttempt('acct:h', policy, guard)).toEqual({ allowed: false, retryAfterMs: 1000 });
      });

      test("past the guard's maxFailures, nothing until its count expires", async () => {
        await failAddress(6);
        expect(await store.beginAttempt('acct:i', policy, guard)).toEqual({ allowed: false, retryAfterMs: 60_000 });
        clock.advance(59_999);
        expect(await store.beginAttempt('acct:i', policy, guard)).toEqual({ allowed: false, retryAfterMs: 1 });
        clock.advance(1);
        expect(await store.beginAttempt('acct:i', policy, guard)).toEqual({ allowed: true });
      });
    });
  });

}
