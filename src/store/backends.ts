import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { MemoryStore } from './memory/memory-store.js';
import type { HostPort, RedisConnection } from './redis/address.js';
import type { StoreObserver } from './observer.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { RedisStore } from './redis/redis-store.js';
import type { Store } from './store.js';

/** What a store needs from the service around it, said by the store's own factory. */
export interface StoreBackend {
  readonly store: Store;
  /** Bound on each operation; undefined for a store that answers within the call (no timer needed). */
  readonly timeoutMs: number | undefined;
  /** Sessions held, for the `auth_sessions_live` gauge; absent when the store cannot count them cheaply. */
  readonly liveSessions?: () => number | Promise<number>;
  /** Upkeep on a timer (the memory store drops what has expired). */
  readonly maintenance?: { readonly intervalMs: number; run(now: number): void };
  /** PostgreSQL: what the metrics read of the pool, the schema and the host written to; its stats. */
  readonly postgres?: PostgresView;
  /** Redis: its stats. */
  readonly redis?: RedisView;
}

/**
 * What the service reads of a PostgreSQL store beyond the Store port. Said here, not as the
 * store class, so the package's public types never name the driver's (a consumer without
 * `@types/pg` compiles with `skipLibCheck: false`).
 */
export interface PostgresView {
  readonly target: { host: string; pooler: boolean };
  poolState(): { total: number; idle: number; waiting: number };
  schemaVersion(): Promise<number>;
  stats(): Promise<{ rows: Record<string, number>; oldestSessionAt: number | null; newestSessionAt: number | null; schemaVersion: number }>;
}

/** What the service reads of a Redis store beyond the Store port. */
export interface RedisView {
  stats(): Promise<{ users: number; serviceAccounts: number; keys: number; usedMemoryBytes: number; maxMemoryBytes: number }>;
}

export type { StoreObserver } from './observer.js';

/** Login-attempt counters the memory store holds at most (about 150 bytes each). */
export const MEMORY_ATTEMPT_ENTRIES = 100_000;

/** How long a session's state must outlive its last refresh token: until every access token of it has expired. */
export function accessGraceMs(config: Pick<Config, 'accessTtlMs' | 'clockSkewMs'>): number {
  return config.accessTtlMs + config.clockSkewMs;
}

/** The backend `config.store` names. */
export function storeBackend(config: Config, clock: Clock, observer: StoreObserver = {}): StoreBackend {
  const common = { accessGraceMs: accessGraceMs(config), maxSessionsPerUser: config.maxSessionsPerUser };
  switch (config.store) {
    case 'memory': {
      const memory = new MemoryStore({ ...common, clock, maxAttemptEntries: MEMORY_ATTEMPT_ENTRIES });
      return {
        store: memory,
        timeoutMs: undefined,
        liveSessions: () => memory.size().sessions,
        maintenance: {
          intervalMs: 60_000,
          run: (now) => {
            memory.sweep(now);
            observer.swept?.({});
          },
        },
      };
    }
    case 'postgres': {
      const postgres = new PostgresStore({
        ...common,
        connection: { url: config.databaseUrl!, caFile: config.databaseCaFile, poolSize: config.databasePoolSize },
        statementTimeoutMs: config.databaseStatementTimeoutMs,
        migrate: config.databaseMigrate,
        observer,
      });
      return {
        store: postgres,
        timeoutMs: config.storeTimeoutMs,
        liveSessions: () => postgres.liveSessionCount(),
        postgres,
        // Every instance sweeps; the deletes are idempotent and bounded per run.
        maintenance: { intervalMs: 60_000, run: () => void postgres.sweep().then((rows) => observer.swept?.(rows), () => {}) },
      };
    }
    case 'redis': {
      const redis = new RedisStore({ ...common, connection: redisConnection(config), keyPrefix: config.redisKeyPrefix, commandTimeoutMs: config.redisCommandTimeoutMs });
      return { store: redis, timeoutMs: config.storeTimeoutMs, redis };
    }
  }
}

/** Where Redis is, from the settings: one URL, a Cluster's nodes, or Sentinels (validated by loadConfig). */
export function redisConnection(config: Config): RedisConnection {
  const hostPort = (v: string): HostPort => ({ host: v.slice(0, v.lastIndexOf(':')).replace(/^\[|\]$/g, ''), port: Number(v.slice(v.lastIndexOf(':') + 1)) });
  const auth = { username: config.redisUsername, password: config.redisPassword, tls: config.redisTls };
  if (config.redisClusterNodes.length > 0) return { kind: 'cluster', nodes: config.redisClusterNodes.map(hostPort), ...auth };
  if (config.redisSentinels.length > 0) {
    return { kind: 'sentinel', sentinels: config.redisSentinels.map(hostPort), name: config.redisSentinelName!, sentinelPassword: config.redisSentinelPassword, ...auth };
  }
  return { kind: 'single', url: config.redisUrl! };
}

/** A store given by the embedding code (tests, a custom backend): bounded like any remote store. */
export function givenStore(store: Store, config: Pick<Config, 'storeTimeoutMs'>): StoreBackend {
  return { store, timeoutMs: config.storeTimeoutMs };
}
