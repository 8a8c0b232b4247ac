import { MAX_CREDENTIALS, type Credential, type ServiceAccountChange, type ServiceAccountRecord, type ServiceAccountUpdate } from '../core/service-accounts.js';

/**
 * A change to a service account as a pure function of its record and the store's time, shared by
 * the stores that hold an account as one record (memory, PostgreSQL): the store makes reading
 * the record and writing the result one atomic step (and asks the last-admin rule first).
 */
export function applyServiceAccountChange(current: ServiceAccountRecord, change: ServiceAccountChange, now: number): ServiceAccountUpdate {
  let credentials = current.credentials;
  if (change.removeCredential) {
    const { id: credentialId, type } = change.removeCredential;
    if (!credentials.some((c) => c.id === credentialId && c.type === type)) return { outcome: 'no_such_credential' };
    credentials = credentials.filter((c) => c.id !== credentialId);
  }
  if (change.addCredential) {
    const added = change.addCredential;
    if (credentials.length >= MAX_CREDENTIALS) return { outcome: 'too_many_credentials' };
    if (credentials.some((c) => (c.type === 'key' && added.type === 'key' && (c.thumbprint ?? c.kid) === added.thumbprint) || (c.type === 'certificate' && added.type === 'certificate' && c.thumbprint === added.thumbprint))) {
      return { outcome: 'credential_exists' };
    }
    if (added.type === 'key' && credentials.some((c) => c.type === 'key' && c.kid === added.kid)) return { outcome: 'kid_taken' };
    credentials = [...credentials, { ...added, createdAt: now } as Credential];
  }
  const account: ServiceAccountRecord = Object.freeze({
    ...current,
    ...(change.roles ? { roles: Object.freeze([...change.roles]) } : {}),
    ...(change.disabled !== undefined ? { disabled: change.disabled } : {}),
    credentials: Object.freeze(credentials),
    revision: current.revision + 1,
  });
  return { outcome: 'updated', account };
}
