import * as crypto from 'node:crypto';

// `crypto.hash` (Node 20.12+) skips the Hash object, half the cost for a short input; the
// fallback gives the same bytes, so instances on different Node versions agree.
const oneShotHash = typeof crypto.hash === 'function' ? crypto.hash : undefined;

/** SHA-256 of a UTF-8 string, as base64url or raw bytes: the digests the per-call paths take. */
export function sha256(data: string, encoding: 'base64url'): string;
export function sha256(data: string, encoding: 'buffer'): Buffer;
export function sha256(data: string, encoding: 'base64url' | 'buffer'): string | Buffer {
  if (oneShotHash) return encoding === 'buffer' ? oneShotHash('sha256', data, 'buffer') : oneShotHash('sha256', data, encoding);
  const digest = crypto.createHash('sha256').update(data);
  return encoding === 'buffer' ? digest.digest() : digest.digest(encoding);
}
