import { ManualClock } from '../../src/clock';
import { MemoryStore } from '../../src/store/memory/memory-store';
import { describeWithPostgres } from './postgres';
import { describeWithRedis } from './redis';

/** A memory store with the service's defaults, on a manual clock. */
export function memoryStore(clock = new ManualClock()): MemoryStore {
  return new MemoryStore({ clock, accessGraceMs: 930_000, maxSessionsPerUser: 100, maxAttemptEntries: 100_000 });
}

/** The stores a suite over a real socket runs on: the service's environment for each. */
export type StoreKind = 'memory' | 'redis' | 'postgres';

/**
 * Describes `body` once per store: memory, a real Redis and a real PostgreSQL (started for the
 * suite). `env()` is the service environment that selects the store, read inside hooks and tests.
 */
export function describeEachStore(name: string, body: (env: () => Record<string, string>, kind: StoreKind) => void): void {
  describe(`${name} (memory store)`, () => body(() => ({}), 'memory'));
  describeWithRedis(`${name} (Redis store)`, (redis) => body(() => ({ AUTH_STORE: 'redis', AUTH_REDIS_URL: redis().url }), 'redis'));
  describeWithPostgres(`${name} (PostgreSQL store)`, (pg) => {
    let url = '';
    beforeAll(async () => {
      url = await pg().createDatabase();
    });
    body(() => ({ AUTH_DATABASE_URL: url }), 'postgres');
  });
}
