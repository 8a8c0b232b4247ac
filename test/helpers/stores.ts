import { ManualClock } from '../../src/clock';
import { MemoryStore } from '../../src/store/memory-store';

/** A memory store with the service's defaults, on a manual clock. */
export function memoryStore(clock = new ManualClock()): MemoryStore {
  return new MemoryStore({ clock, accessGraceMs: 930_000, maxSessionsPerUser: 100, maxAttemptEntries: 100_000 });
}
