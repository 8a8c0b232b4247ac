import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fastHasher, PASSWORD } from './server';

/** Writes a users file with the given `username -> roles` and the shared test password. */
export async function writeUsersFile(users: Record<string, string[]>, password = PASSWORD): Promise<string> {
  const hasher = fastHasher();
  const lines = ['# test users'];
  for (const [name, roles] of Object.entries(users)) lines.push(`${name}:${await hasher.hash(password)}:${roles.join(',')}`);
  const path = join(mkdtempSync(join(tmpdir(), 'auth-users-')), 'users');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}
