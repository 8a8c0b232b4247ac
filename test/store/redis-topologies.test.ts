import type { ManualClock } from '../../src/clock';
import { RedisStore } from '../../src/store/redis/redis-store';
import { describeEachTopology, type RedisTopology } from '../helpers/redis-topologies';
import { describeStoreConformance } from './conformance';

let prefix = 0;
const open = async (topology: RedisTopology, clock: ManualClock, maxSessionsPerUser: number) => {
  const store = new RedisStore({ connection: topology.connection, keyPrefix: `conf${++prefix}:`, commandTimeoutMs: 2000, accessGraceMs: 60_000, maxSessionsPerUser, clock });
  await store.connect();
  return store;
};

// The single-server topology runs the same suite in redis-store.test.ts, beside its own tests.
describeEachTopology(
  'RedisStore',
  (topology, kind) => {
    describeStoreConformance(kind, ({ clock, maxSessionsPerUser }) => open(topology(), clock, maxSessionsPerUser));
  },
  ['sentinel', 'cluster'],
);
