import type { Store } from '../../../src/store/store';
import type { Conformance } from './context';

/** The maintenance switch (OperatorStore): off by default, on and off again, seen by a second read. */
export function maintenanceSuite(t: Conformance): void {
  let store: Store;

  describe('maintenance switch', () => {
    beforeEach(() => ({ store } = t));

    test('off until set; on; off again', async () => {
      expect(await store.readMaintenance()).toBe(false);
      await store.setMaintenance(true);
      expect(await store.readMaintenance()).toBe(true);
      await store.setMaintenance(true);
      expect(await store.readMaintenance()).toBe(true);
      await store.setMaintenance(false);
      expect(await store.readMaintenance()).toBe(false);
    });
  });
}
