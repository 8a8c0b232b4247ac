import type { Random } from '../random.js';

/** Kinds of identifier: users, sessions, service accounts, credentials of service accounts. */
export type IdPrefix = 'usr' | 'ses' | 'sva' | 'sec' | 'key' | 'crt' | 'pkc' | 'apk';

/** A prefixed identifier with 128 random bits: "usr_…", "ses_…". Short and compact in memory. */
export function newId(random: Random, prefix: IdPrefix): string {
  return idFromBytes(prefix, random.bytes(16));
}

export function idFromBytes(prefix: IdPrefix, bytes: Buffer): string {
  return `${prefix}_${bytes.toString('base64url')}`;
}

const ID = /^[a-z]{3}_[A-Za-z0-9_-]{21}[AQgw]$/;

/** True for an identifier of that kind: its prefix and exactly 16 bytes, canonically encoded. */
export function isId(value: string, prefix: IdPrefix): boolean {
  return value.length === 26 && value.startsWith(`${prefix}_`) && ID.test(value);
}

/** The 16 bytes of an identifier; throws for anything else (a wiring bug, never client input). */
export function idBytes(id: string, prefix: IdPrefix): Buffer {
  if (!isId(id, prefix)) throw new Error(`not a ${prefix} identifier`);
  return Buffer.from(id.slice(4), 'base64url');
}
