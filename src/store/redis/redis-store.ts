import { withPorts, type PortsOf } from '../ports.js';
import type { Store } from '../store.js';
import { RedisApiKeys } from './api-keys.js';
import { RedisAttempts } from './attempts.js';
import { RedisBase, type RedisStoreOptions } from './base.js';
import { RedisMaintenance } from './maintenance.js';
import { RedisPasskeys } from './passkeys.js';
import { RedisRates } from './rates.js';
import { RedisServiceAccounts } from './service-accounts.js';
import { RedisSessions } from './sessions.js';
import { RedisUserSecrets } from './user-secrets.js';
import { RedisUpkeep } from './upkeep.js';
import { RedisUsers } from './users.js';

export { CLOCK_SLACK_MS, type RedisStoreOptions } from './base.js';

/** The Redis store's ports, one file each with its scripts: adding one is a line here. */
const PORTS = [RedisUsers, RedisSessions, RedisServiceAccounts, RedisAttempts, RedisRates, RedisUserSecrets, RedisPasskeys, RedisApiKeys, RedisMaintenance, RedisUpkeep] as const;

export interface RedisStore extends PortsOf<typeof PORTS> {}

/**
 * The shared store for several instances, on Redis (one server, Sentinel or Cluster): see
 * RedisBase for the connection, the clock and health, and each port's file for its keys and scripts.
 */
export class RedisStore extends RedisBase implements Store {
  constructor(options: RedisStoreOptions) {
    super(options, Object.assign({}, ...PORTS.map((port) => ('scripts' in port ? port.scripts : {}))));
  }
}

withPorts(RedisStore, PORTS);
