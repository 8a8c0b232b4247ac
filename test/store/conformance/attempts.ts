import type { ManualClock } from '../../../src/clock';
import type { AttemptGrant, BackoffPolicy } from '../../../src/core/login-throttle';
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

    describe('beginGuardedAttempt: the address asked in the same operation, first', () => {
      const addressPolicy: BackoffPolicy = { ...policy, freeFailures: 3 };
      const guard = { key: 'addr:5.6.7.8', policy: addressPolicy };
      // One after another: concurrent failures on one row would queue on its lock (PostgreSQL) for nothing.
      const failAddress = async (n: number) => {
        for (let i = 0; i < n; i++) await store.recordFailure(guard.key, addressPolicy);
      };

      test.each([
        { name: 'neither holds back', addressFailures: 0, account: [], want: { allowed: true } },
        { name: "the address's failures are still free", addressFailures: 2, account: [], want: { allowed: true } },
        { name: 'the address holds back: its wait is the answer', addressFailures: 3, account: [], want: { allowed: false, retryAfterMs: 1000 } },
        { name: 'the address holds back longer than the account', addressFailures: 5, account: ['fail', 'fail'], want: { allowed: false, retryAfterMs: 4000 } },
        // The account's failures: two, then a third once the first wait (1 s) has passed: it waits 2 s.
        { name: 'the address holds back shorter than the account: still the answer, as it is asked first', addressFailures: 3, account: ['fail', 'fail', 'wait', 'fail'], want: { allowed: false, retryAfterMs: 1000 } },
        { name: 'the account holds back, the address does not', addressFailures: 0, account: ['fail', 'fail'], want: { allowed: false, retryAfterMs: 1000 } },
      ] as Array<{ name: string; addressFailures: number; account: Array<'fail' | 'wait'>; want: AttemptGrant }>)('$name', async ({ addressFailures, account, want }) => {
        for (const step of account) {
          if (step === 'fail') await fail('acct:g');
          else clock.advance(1000);
        }
        await failAddress(addressFailures);
        expect(await store.beginGuardedAttempt('acct:g', policy, guard)).toEqual(want);
      });

      test('the guard is only read: a begin on the address afterwards counts its failures alone', async () => {
        await failAddress(2);
        for (let i = 0; i < 3; i++) expect(await store.beginGuardedAttempt(`acct:r${i}`, policy, guard)).toEqual({ allowed: true });
        // Had the guarded begins reserved on the address, 2 failures and 3 in flight would hold it back.
        expect(await store.beginAttempt(guard.key, addressPolicy)).toEqual({ allowed: true });
      });

      test('a refusal by the guard reserves nothing on the key; an allowed begin reserves as beginAttempt does', async () => {
        await failAddress(3);
        for (let i = 0; i < 5; i++) expect(await store.beginGuardedAttempt('acct:h', policy, guard)).toEqual({ allowed: false, retryAfterMs: 1000 });
        // Nothing was reserved: the two free attempts are both still there.
        expect(await store.beginAttempt('acct:h', policy)).toEqual({ allowed: true });
        expect(await store.beginAttempt('acct:h', policy)).toEqual({ allowed: true });
        expect(await store.beginAttempt('acct:h', policy)).toEqual({ allowed: false, retryAfterMs: 1000 });
        // Once the address's wait has passed, a guarded begin reserves in flight like any other.
        clock.advance(1000);
        await store.endAttempt('acct:h', policy, 'released');
        await store.endAttempt('acct:h', policy, 'released');
        expect(await store.beginGuardedAttempt('acct:h', policy, guard)).toEqual({ allowed: true });
        expect(await store.beginGuardedAttempt('acct:h', policy, guard)).toEqual({ allowed: true });
        expect(await store.beginGuardedAttempt('acct:h', policy, guard)).toEqual({ allowed: false, retryAfterMs: 1000 });
      });

      test("past the guard's maxFailures, nothing until its count expires", async () => {
        await failAddress(6);
        expect(await store.beginGuardedAttempt('acct:i', policy, guard)).toEqual({ allowed: false, retryAfterMs: 60_000 });
        clock.advance(59_999);
        expect(await store.beginGuardedAttempt('acct:i', policy, guard)).toEqual({ allowed: false, retryAfterMs: 1 });
        clock.advance(1);
        expect(await store.beginGuardedAttempt('acct:i', policy, guard)).toEqual({ allowed: true });
      });
    });
  });

}
