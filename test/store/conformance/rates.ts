import type { ManualClock } from '../../../src/clock';
import type { Store } from '../../../src/store/store';
import { T0, type Conformance } from './context';

/** The rate port (RateStore): a fixed window per key, aligned to the epoch, on the store's clock. */
export function ratesSuite(t: Conformance): void {
  let store: Store;
  let clock: ManualClock;

  describe('rate windows', () => {
    beforeEach(() => ({ store, clock } = t));
    const MINUTE = 60_000;

    test('up to the limit a window, then refused with the wait to its end; the next window starts afresh', async () => {
      clock.set(T0 + 15_000);
      for (let i = 0; i < 3; i++) expect(await store.hitRate('reg:a', 3, MINUTE)).toEqual({ allowed: true, retryAfterMs: 0 });
      expect(await store.hitRate('reg:a', 3, MINUTE)).toEqual({ allowed: false, retryAfterMs: 45_000 });
      clock.advance(40_000);
      expect(await store.hitRate('reg:a', 3, MINUTE)).toEqual({ allowed: false, retryAfterMs: 5_000 });
      clock.advance(5_000);
      expect(await store.hitRate('reg:a', 3, MINUTE)).toEqual({ allowed: true, retryAfterMs: 0 });
    });

    test('keys count apart; a window length is part of nothing but the key’s own counter', async () => {
      expect(await store.hitRate('reg:a', 1, MINUTE)).toMatchObject({ allowed: true });
      expect(await store.hitRate('reg:a', 1, MINUTE)).toMatchObject({ allowed: false });
      expect(await store.hitRate('reg:b', 1, MINUTE)).toMatchObject({ allowed: true });
      expect(await store.hitRate('reg:c', 1, 10 * MINUTE)).toMatchObject({ allowed: true });
    });

    test('concurrent hits are counted exactly: the limit is allowed, no more', async () => {
      const results = await Promise.all(Array.from({ length: 25 }, () => store.hitRate('reg:burst', 10, MINUTE)));
      expect(results.filter((r) => r.allowed)).toHaveLength(10);
      for (const r of results.filter((r) => !r.allowed)) expect(r.retryAfterMs).toBe(MINUTE);
    });
  });
}
