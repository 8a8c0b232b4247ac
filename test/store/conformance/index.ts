import { ManualClock } from '../../../src/clock';
import type { Store } from '../../../src/store/store';
import { attemptsSuite } from './attempts';
import { GRACE, MAX_SESSIONS, T0, type Conformance, type MakeStore } from './context';
import { lastAdminSuite } from './last-admin';
import { maintenanceSuite } from './maintenance';
import { passkeysSuite } from './passkeys';
import { apiKeysSuite } from './api-keys';
import { ratesSuite } from './rates';
import { serviceAccountsSuite } from './service-accounts';
import { sessionsSuite } from './sessions';
import { userSecretsSuite } from './user-secrets';
import { usersSuite } from './users';

export { T0, type MakeStore } from './context';

/** One suite per port of the Store, each in the file of the port's name; a new port adds its file and a line here. */
const SUITES: ReadonlyArray<(t: Conformance) => void> = [usersSuite, sessionsSuite, serviceAccountsSuite, lastAdminSuite, attemptsSuite, ratesSuite, userSecretsSuite, passkeysSuite, apiKeysSuite, maintenanceSuite];

/**
 * The conformance suite for the Store interface, run against every implementation and topology
 * (memory, Redis, Redis Sentinel, Redis Cluster, PostgreSQL). Time
 * is the store's own, driven by a manual clock, so no test sleeps.
 */
export function describeStoreConformance(name: string, makeStore: MakeStore): void {
  describe(`Store conformance: ${name}`, () => {
    const t: { store: Store; clock: ManualClock } = { store: undefined!, clock: undefined! };

    beforeEach(async () => {
      t.clock = new ManualClock(T0);
      t.store = await makeStore({ clock: t.clock, accessGraceMs: GRACE, maxSessionsPerUser: MAX_SESSIONS });
    });
    afterEach(() => t.store.close());

    for (const suite of SUITES) suite(t);

    test('ping resolves while the store is up', async () => {
      await expect(t.store.ping()).resolves.toBeUndefined();
    });
  });
}
