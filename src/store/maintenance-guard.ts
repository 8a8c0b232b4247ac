import { AuthError } from '../errors.js';
import { OPERATIONS } from './guarded-store.js';
import type { Store } from './store.js';

/** The operations that change nothing: still served while the switch is on. */
export const READ_OPERATIONS = new Set<string>([
  'findUserByUsername',
  'getUser',
  'listUsers',
  'liveSession',
  'listSessions',
  'checkAttempt',
  'fileUserIds',
  'getServiceAccount',
  'listServiceAccounts',
  'liveCredential',
  'readUserSecrets',
  'passkeyOwner',
  'getApiKey',
  'listApiKeys',
  'liveApiKey',
  'exportSessions',
  'readMaintenance',
  'setMaintenance',
  'connect',
  'ping',
  'close',
]);

/** This instance's view of the maintenance switch, kept by the health check (run.ts). */
export class MaintenanceSwitch {
  on = false;
}

export const READ_ONLY = 'the service is read-only for a maintenance; retry shortly';

/**
 * While the switch is on, every operation that would write fails `unavailable` before it reaches
 * the store (a retry later is safe), and reads go on: tokens keep validating, the interceptor
 * keeps working, nothing changes, so an export taken meanwhile misses nothing.
 */
export function refuseWritesDuring(store: Store, maintenance: MaintenanceSwitch): Store {
  const wrapped: Record<string, unknown> = {};
  for (const name of OPERATIONS) {
    const op = (store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[name]!.bind(store);
    wrapped[name] = READ_OPERATIONS.has(name) ? op : (...args: unknown[]) => (maintenance.on ? Promise.reject(new AuthError('unavailable', READ_ONLY)) : op(...args));
  }
  return wrapped as unknown as Store;
}
