import { withPorts, type PortsOf } from '../ports.js';
import type { Store } from '../store.js';
import { PostgresApiKeys } from './api-keys.js';
import { PostgresAttempts } from './attempts.js';
import { PostgresBase } from './base.js';
import { PostgresImport } from './import.js';
import { PostgresMaintenance } from './maintenance.js';
import { PostgresPasskeys } from './passkeys.js';
import { PostgresRates } from './rates.js';
import { PostgresServiceAccounts } from './service-accounts.js';
import { PostgresSessions } from './sessions.js';
import { PostgresUpkeep } from './upkeep.js';
import { PostgresUserSecrets } from './user-secrets.js';
import { PostgresUsers } from './users.js';

export { ImportConflictError, LIVE_BATCH, poolConfig, SWEEP_BATCH, type PostgresConnection, type PostgresObserver, type PostgresStoreOptions } from './base.js';

/** The PostgreSQL store's ports and concerns, one file each: adding one is a line here. */
const PORTS = [PostgresUsers, PostgresSessions, PostgresServiceAccounts, PostgresAttempts, PostgresRates, PostgresUserSecrets, PostgresPasskeys, PostgresApiKeys, PostgresMaintenance, PostgresImport, PostgresUpkeep] as const;

export interface PostgresStore extends PortsOf<typeof PORTS> {}

/**
 * The system of record on PostgreSQL: see PostgresBase for the pool, the bounds every operation
 * keeps and the schema, and each port's file for its statements.
 */
export class PostgresStore extends PostgresBase implements Store {}

withPorts(PostgresStore, PORTS);
