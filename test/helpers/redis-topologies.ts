import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import type { RedisConnection } from '../../src/store/redis/address';
import { freePort, freePortToKeep, startRedis, type TestRedis } from './redis';
import { describeNeeding, type Tool } from './requires';
import { eventually } from './wait';

const run = promisify(execFile);

/**
 * A real Redis deployment on free loopback ports, in one of the three shapes the service
 * supports. `env` is what the service needs to use it; `connection` the same for an in-process
 * RedisStore; `client()` a plain ioredis client of the right kind for looking at the data.
 */
export interface RedisTopology {
  readonly kind: 'single' | 'sentinel' | 'cluster';
  readonly env: Record<string, string>;
  readonly connection: RedisConnection;
  client(): Redis | Cluster;
  stop(): Promise<void>;
}

export async function startSingle(): Promise<RedisTopology & { readonly redis: TestRedis }> {
  const redis = await startRedis();
  return {
    kind: 'single',
    redis,
    env: { AUTH_STORE: 'redis', AUTH_REDIS_URL: redis.url },
    connection: { kind: 'single', url: redis.url },
    client: () => new Redis(redis.url),
    stop: () => redis.stop(),
  };
}

// --- Sentinel ---------------------------------------------------------------------------------

export const SENTINEL_NAME = 'authprimary';

export interface SentinelTopology extends RedisTopology {
  readonly kind: 'sentinel';
  /** The servers (the first started as primary, the second as its replica); either may be primary now. */
  readonly servers: TestRedis[];
  readonly sentinels: ChildProcess[];
  /** The port the sentinels name as primary now. */
  primaryPort(): Promise<number>;
}

/**
 * A primary, one replica and three sentinels (quorum 2) that call the primary down after 1 s of
 * silence. Resolves once every sentinel knows the replica and the other two sentinels, so a
 * failover can be authorised from the first second, and the replica has made its first sync.
 */
export async function startSentinel(): Promise<SentinelTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'auth-sentinel-'));
  const primary = await startRedis();
  const replica = await startRedis(undefined, ['--replicaof', '127.0.0.1', String(primary.port)]);
  const servers = [primary, replica];
  const ports = [await freePort(), await freePort(), await freePort()];
  const sentinels: ChildProcess[] = [];
  const stop = async () => {
    for (const s of sentinels) s.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${SENTINEL_NAME} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_NAME} 1000`,
          `sentinel failover-timeout ${SENTINEL_NAME} 10000`,
          `sentinel parallel-syncs ${SENTINEL_NAME} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push(await startProcessUntil('redis-sentinel', [conf], '+monitor'));
    }
    const probes = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: false }));
    const replicaProbe = new Redis({ port: replica.port, host: '127.0.0.1' });
    try {
      await eventually(
        async () => {
          for (const probe of probes) {
            const replicas = (await probe.call('SENTINEL', 'REPLICAS', SENTINEL_NAME)) as unknown[];
            const others = (await probe.call('SENTINEL', 'SENTINELS', SENTINEL_NAME)) as unknown[];
            if (replicas.length < 1 || others.length < 2) return false;
          }
          return replicaInSync(replicaProbe);
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
    } finally {
      for (const p of probes) p.disconnect();
      replicaProbe.disconnect();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const sentinelList = ports.map((p) => `127.0.0.1:${p}`).join(',');
  return {
    kind: 'sentinel',
    servers,
    sentinels,
    env: { AUTH_STORE: 'redis', AUTH_REDIS_SENTINELS: sentinelList, AUTH_REDIS_SENTINEL_NAME: SENTINEL_NAME },
    connection: { kind: 'sentinel', sentinels: ports.map((port) => ({ host: '127.0.0.1', port })), name: SENTINEL_NAME },
    client: () => new Redis({ sentinels: ports.map((port) => ({ host: '127.0.0.1', port })), name: SENTINEL_NAME }),
    async primaryPort() {
      const probe = new Redis({ port: ports[0]!, host: '127.0.0.1', maxRetriesPerRequest: 0 });
      try {
        const [, port] = (await probe.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_NAME)) as [string, string];
        return Number(port);
      } finally {
        probe.disconnect();
      }
    },
    stop,
  };
}

// --- Cluster ----------------------------------------------------------------------------------

export interface ClusterTopology extends RedisTopology {
  readonly kind: 'cluster';
  /** The nodes, by the order they were started; `restart(i)` replaces an entry. */
  readonly nodes: TestRedis[];
  /** Starts node i again on its port with its nodes.conf, so it rejoins the Cluster. */
  restart(i: number): Promise<TestRedis>;
  /** Ports of the nodes that are primaries now (by CLUSTER NODES of a live node). */
  primaryPorts(): Promise<number[]>;
  /** Resolves when every live node says cluster_state:ok, every slot is served and every replica is in sync. */
  settled(timeoutMs?: number): Promise<void>;
}

/**
 * A Redis Cluster of three primaries, each with one replica (`replicas: 1`) or none, made with
 * `redis-cli --cluster create`; a node is judged failed after 1 s, and a replica takes over however long
 * ago it last heard from its primary (validity factor 0: a freshly made replica may not have yet).
 */
export async function startCluster(options: { replicas?: 0 | 1 } = {}): Promise<ClusterTopology> {
  const replicas = options.replicas ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'auth-cluster-'));
  const argsFor = (port: number) => ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '1000', '--cluster-replica-validity-factor', '0', '--dir', dir];
  const nodes: TestRedis[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  const liveNode = () => nodes.find((n) => n.process.exitCode === null && n.process.signalCode === null)!;
  const settled = async (timeoutMs = 20_000) => {
    await eventually(
      async () => {
        for (const node of nodes) {
          if (node.process.exitCode !== null || node.process.signalCode !== null) continue;
          const probe = new Redis({ port: node.port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 0 });
          try {
            const info = String(await probe.call('CLUSTER', 'INFO'));
            if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) return false;
            if (!(await replicaInSync(probe))) return false;
          } catch {
            return false;
          } finally {
            probe.disconnect();
          }
        }
        return true;
      },
      { timeoutMs, intervalMs: 100 },
    );
  };
  try {
    const count = replicas === 1 ? 6 : 3;
    for (let i = 0; i < count; i++) {
      // Kept for restart(i), with its bus port (+10000): outside the range outgoing connections take theirs from.
      const port = await freePortToKeep();
      nodes.push(await startRedis(port, argsFor(port)));
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
    await settled();
  } catch (err) {
    await stop();
    throw err;
  }
  const primaries = nodes.slice(0, 3).map((n) => ({ host: '127.0.0.1', port: n.port }));
  return {
    kind: 'cluster',
    nodes,
    env: { AUTH_STORE: 'redis', AUTH_REDIS_CLUSTER_NODES: primaries.map((p) => `${p.host}:${p.port}`).join(',') },
    connection: { kind: 'cluster', nodes: primaries },
    client: () => new Cluster(primaries),
    async restart(i) {
      const port = nodes[i]!.port;
      nodes[i] = await startRedis(port, argsFor(port));
      return nodes[i]!;
    },
    async primaryPorts() {
      const probe = new Redis({ port: liveNode().port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
      try {
        const lines = String(await probe.call('CLUSTER', 'NODES')).trim().split('\n');
        return lines
          .map((l) => l.split(' '))
          .filter((f) => f[2]!.includes('master') && !f[2]!.includes('fail'))
          .map((f) => Number(/:(\d+)@/.exec(f[1]!)![1]));
      } finally {
        probe.disconnect();
      }
    },
    settled,
    stop,
  };
}

// --- suites -----------------------------------------------------------------------------------

export const TOPOLOGIES = {
  single: { tools: ['redis-server'] as Tool[], start: startSingle },
  sentinel: { tools: ['redis-server', 'redis-sentinel'] as Tool[], start: startSentinel },
  cluster: { tools: ['redis-server', 'redis-cli'] as Tool[], start: () => startCluster() },
} as const;
export type TopologyKind = keyof typeof TOPOLOGIES;

/**
 * Describes a suite once per Redis topology (single, Sentinel, Cluster), each against its own
 * deployment started for it. Without the programs a topology needs, its suite fails with the
 * install command (see describeNeeding).
 */
export function describeEachTopology(name: string, body: (topology: () => RedisTopology, kind: TopologyKind) => void, kinds: readonly TopologyKind[] = ['single', 'sentinel', 'cluster']): void {
  for (const kind of kinds) {
    describeNeeding(TOPOLOGIES[kind].tools, `${name} (Redis ${kind})`, () => {
      let topology: RedisTopology | undefined;
      beforeAll(async () => {
        topology = await TOPOLOGIES[kind].start();
      }, 60_000);
      afterAll(async () => {
        await topology?.stop();
      });
      body(() => topology!, kind);
    });
  }
}

/** True unless the server is a replica whose link to its primary is not up (first sync not done). */
async function replicaInSync(probe: Redis): Promise<boolean> {
  const info = await probe.info('replication');
  return !info.includes('role:slave') || info.includes('master_link_status:up');
}

/** Spawns a program and resolves once its output contains `ready`. */
function startProcessUntil(command: string, args: string[], ready: string): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${command} did not start: ${out}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(ready)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => reject(new Error(`${command} exited ${code}: ${out}`)));
  });
}
