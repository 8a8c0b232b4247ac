import type { Random } from '../random.js';

/** A prefixed identifier with 128 random bits: "usr_…", "ses_…". Short and compact in memory. */
export function newId(random: Random, prefix: 'usr' | 'ses'): string {
  return `${prefix}_${random.bytes(16).toString('base64url')}`;
}
