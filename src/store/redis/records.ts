import type { LiveUser, UserOrigin, UserRecord } from '../../core/records.js';
import type { Credential, ServiceAccountRecord } from '../../core/service-accounts.js';

/* What the Redis store's hashes and script replies hold, as the core's records. */

/** Every script reply of several rows is a flat list of fields and values. */
export type Reply = Array<string | number | null>;

export function fieldsOf(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

export function userOf(id: string, f: Record<string, string>): UserRecord | undefined {
  if (f.n === undefined) return undefined;
  return {
    id,
    username: f.n,
    passwordHash: f.ph ?? '',
    roles: JSON.parse(f.ro ?? '[]') as string[],
    createdAt: Number(f.c),
    passwordChangedAt: Number(f.pc),
    disabled: f.d === '1',
    generation: Number(f.g),
    revision: Number(f.rv),
    origin: (f.o ?? 'api') as UserOrigin,
    fileDigest: f.fd === '' ? undefined : f.fd,
  };
}

export function accountOf(id: string, f: Record<string, string>): ServiceAccountRecord | undefined {
  if (f.n === undefined) return undefined;
  const credentials = Object.entries(f)
    .filter(([field]) => field.startsWith('cr:'))
    .map(([, json]) => JSON.parse(json) as Credential)
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  return { id, name: f.n, roles: JSON.parse(f.ro ?? '[]') as string[], disabled: f.d === '1', createdAt: Number(f.c), revision: Number(f.rv), credentials };
}

export function liveOf(userId: string, reply: Reply, at: number): LiveUser {
  return { id: userId, username: String(reply[at]), roles: JSON.parse(String(reply[at + 1])) as string[], revision: Number(reply[at + 2]) };
}
