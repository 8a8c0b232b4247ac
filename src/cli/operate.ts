import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../clock.js';
import { loadConfig, type Config } from '../config.js';
import { STORE_CHECK_INTERVAL_MS } from '../run.js';
import { storeBackend } from '../store/backends.js';
import type { Store } from '../store/store.js';
import { CliError, type Io } from './commands.js';

/*
 * What an operator does to a running deployment's shared store, without SQL or redis-cli:
 * maintenance (writes refused while data moves), revoke every session (after a restore or a key
 * leak), list users, and the store's figures. The memory store lives inside one service process,
 * out of reach of a command: these work on Redis and PostgreSQL.
 */

const PAGE = 1000;

/** The shared store the environment configures, connected; a usage error for the memory store. */
async function sharedStore<T>(io: Io, command: string, work: (store: Store, config: Config, backend: ReturnType<typeof storeBackend>) => Promise<T>): Promise<T> {
  let config: Config;
  try {
    config = loadConfig(io.env);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  if (config.store === 'memory') throw new CliError(`${command} acts on a shared store: the memory store lives inside one service process (set AUTH_REDIS_URL or AUTH_DATABASE_URL)`, 2);
  const backend = storeBackend(config, systemClock);
  const { store } = backend;
  try {
    await store.connect();
  } catch (err) {
    await store.close();
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    throw new CliError(`cannot reach the ${config.store} store: ${cause}`, 1);
  }
  try {
    return await work(store, config, backend);
  } finally {
    await store.close();
  }
}

export const MAINTENANCE_USAGE = `usage: grpc-auth maintenance on|off|status

on: every instance sharing the store refuses writes (Login, Refresh, Register... answer UNAVAILABLE;
    Validate and the interceptor go on). Returns once every instance has seen it and finished
    the writes it had begun, so an export taken next misses nothing.
off: writes are taken again. status: prints on or off.`;

/** maintenance on|off|status */
export async function maintenanceCommand(args: readonly string[], io: Io): Promise<void> {
  if (args.length !== 1 || !['on', 'off', 'status'].includes(args[0]!)) throw new CliError(MAINTENANCE_USAGE, 2);
  await sharedStore(io, 'maintenance', async (store, config) => {
    if (args[0] === 'status') {
      io.out(`${(await store.readMaintenance()) ? 'on' : 'off'}\n`);
      return;
    }
    const on = args[0] === 'on';
    await store.setMaintenance(on);
    if (on) {
      // Each instance reads the switch at its next health check (every second); a write it had
      // begun just before ends within AUTH_STORE_TIMEOUT.
      const settleMs = 2 * STORE_CHECK_INTERVAL_MS + config.storeTimeoutMs + 500;
      io.err(`maintenance on: waiting ${(settleMs / 1000).toFixed(1)} s for every instance to see it`);
      await sleep(settleMs);
      io.out('maintenance on: every instance refuses writes; reads go on\n');
    } else {
      io.out('maintenance off: writes are taken again (each instance within a second)\n');
    }
  });
}

export const SESSIONS_USAGE = `usage: grpc-auth sessions revoke-all

Ends every user's sessions at once, on every instance (each user's generation moves on): after a
restore from a backup, or a leak of the signing or tag keys. Everyone signs in again.`;

/** sessions revoke-all: every user's sessions end; prints how many users. */
export async function sessionsCommand(args: readonly string[], io: Io): Promise<void> {
  if (args.length !== 1 || args[0] !== 'revoke-all') throw new CliError(SESSIONS_USAGE, 2);
  await sharedStore(io, 'sessions revoke-all', async (store) => {
    let users = 0;
    for (let after: string | undefined; ; ) {
      const page = await store.listUsers({ prefix: '', after, limit: PAGE });
      for (const user of page) {
        const result = await store.updateUser(user.id, { revokeSessions: true });
        if (result.outcome === 'updated') users++;
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.username;
    }
    io.out(`ended the sessions of ${users} users\n`);
  });
}

export const USERS_LIST_USAGE = 'usage: grpc-auth users list [--prefix <p>] [--limit <n>] [--json]';

/** users list: a line per user (name, id, roles, state), in name order; --json for JSON Lines. */
export async function usersListCommand(args: readonly string[], io: Io): Promise<void> {
  const flag = (name: string) => {
    const at = args.indexOf(name);
    return at < 0 ? undefined : args[at + 1];
  };
  const known = new Set(['--prefix', '--limit', '--json']);
  for (let i = 0; i < args.length; i++) {
    if (!known.has(args[i]!)) throw new CliError(`unknown argument "${args[i]}"\n\n${USERS_LIST_USAGE}`, 2);
    if (args[i] !== '--json') i++;
  }
  const limit = flag('--limit') === undefined ? Infinity : Number(flag('--limit'));
  if (!(limit > 0) || (limit !== Infinity && !Number.isInteger(limit))) throw new CliError(`--limit must be a whole number above 0\n\n${USERS_LIST_USAGE}`, 2);
  const json = args.includes('--json');
  await sharedStore(io, 'users list', async (store) => {
    let shown = 0;
    for (let after: string | undefined; shown < limit; ) {
      const page = await store.listUsers({ prefix: flag('--prefix') ?? '', after, limit: Math.min(PAGE, limit - shown) });
      for (const u of page) {
        io.out(
          json
            ? `${JSON.stringify({ id: u.id, username: u.username, roles: u.roles, disabled: u.disabled, origin: u.origin, createdAt: new Date(u.createdAt).toISOString() })}\n`
            : `${u.username}\t${u.id}\t${u.roles.join(',') || '-'}\t${u.disabled ? 'disabled' : 'enabled'}\t${u.origin}\n`,
        );
      }
      shown += page.length;
      if (page.length === 0 || page.length < PAGE) break;
      after = page[page.length - 1]!.username;
    }
  });
}

export const STORE_USAGE = 'usage: grpc-auth store stats\n\nPrints the store\'s figures as JSON: rows per table, the oldest and newest session, the schema version (PostgreSQL); keys and memory (Redis).';

/** store stats */
export async function storeCommand(args: readonly string[], io: Io): Promise<void> {
  if (args.length !== 1 || args[0] !== 'stats') throw new CliError(STORE_USAGE, 2);
  await sharedStore(io, 'store stats', async (_store, config, backend) => {
    if (backend.postgres) {
      const s = await backend.postgres.stats();
      const at = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      io.out(`${JSON.stringify({ store: 'postgres', writer: backend.postgres.target, schemaVersion: s.schemaVersion, rows: s.rows, oldestSession: at(s.oldestSessionAt), newestSession: at(s.newestSessionAt) }, null, 2)}\n`);
    } else if (backend.redis) {
      io.out(`${JSON.stringify({ store: 'redis', ...(await backend.redis.stats()) }, null, 2)}\n`);
    } else {
      throw new CliError(`store stats knows no figures of the ${config.store} store`, 1);
    }
  });
}
