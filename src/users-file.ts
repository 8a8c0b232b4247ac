import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { canonicalUsername } from './core/credentials.js';
import { ARGON2ID_PHC } from './core/password-hasher.js';

/**
 * The optional users file (AUTH_USERS_FILE): one user a line, `username:argon2id-hash:roles`,
 * roles comma-separated (may be empty); blank lines and lines starting with # are skipped.
 * Print a hash with `grpc-auth hash-password`. Errors name the file and line, never its content.
 * The file seeds the store at start (see users-file-seed.ts).
 */
export class UsersFileError extends Error {
  override readonly name = 'UsersFileError';
}

const ROLE = /^[a-z][a-z0-9_.-]{0,63}$/;

/** One user of the users file. */
export interface FileUser {
  readonly id: string;
  readonly username: string;
  readonly passwordHash: string;
  readonly roles: readonly string[];
  /** A digest of the line: an edited line has another. */
  readonly digest: string;
  /** "users line 3", for messages. */
  readonly where: string;
}

/** A stable id for a file user (16 bytes, like every user id), so instances and restarts agree. */
export function fileUserId(username: string): string {
  return `usr_${createHash('sha256').update(`users-file:${username}`).digest().subarray(0, 16).toString('base64url')}`;
}

export function parseUsersFile(text: string, source: string): FileUser[] {
  const users: FileUser[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${source} line ${i + 1}`;
    const parts = line.split(':');
    if (parts.length !== 3) throw new UsersFileError(`${where}: expected username:hash:roles`);
    const [rawName, hash, rawRoles] = parts as [string, string, string];
    const username = canonicalUsername(rawName);
    if (username === undefined) throw new UsersFileError(`${where}: invalid username`);
    if (seen.has(username)) throw new UsersFileError(`${where}: duplicate username`);
    if (!ARGON2ID_PHC.test(hash)) {
      throw new UsersFileError(`${where}: the hash must be an argon2id PHC string (grpc-auth hash-password)`);
    }
    const roles = rawRoles === '' ? [] : rawRoles.split(',').map((r) => r.trim());
    const bad = roles.find((r) => !ROLE.test(r));
    if (bad !== undefined) throw new UsersFileError(`${where}: invalid role "${bad}" (lower-case letters, digits, _ . -)`);
    seen.add(username);
    const digest = createHash('sha256').update(`${username}:${hash}:${[...roles].sort().join(',')}`).digest('base64url').slice(0, 22);
    users.push({ id: fileUserId(username), username, passwordHash: hash, roles: [...new Set(roles)].sort(), digest, where });
  });
  return users;
}

export function readUsersFile(path: string): FileUser[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsersFileError(`cannot read users file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseUsersFile(text, path);
}
