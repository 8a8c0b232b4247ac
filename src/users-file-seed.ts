import type { AccountStore } from './core/accounts.js';
import type { EventLog } from './core/events.js';
import { usernameSkeleton } from './core/credentials.js';
import { UsersFileError, type FileUser } from './users-file.js';

/** What seeding needs of the store: the accounts port and the ids of the users that came from the file. */
export type SeedStore = Pick<AccountStore, 'findUserByUsername' | 'createUser' | 'updateUser' | 'deleteUser' | 'getUser'> & {
  fileUserIds(): Promise<string[]>;
};

/**
 * The users file seeds the store at start, where every instance and the API see its users like
 * any other:
 * - a file user missing from the store is created (origin "file");
 * - a file user whose line changed since it was seeded gets the file's password hash and roles
 *   (a new hash ends their sessions, as an admin's SetPassword does); an unchanged line leaves
 *   what the API did since (an admin's role change, a disable) alone;
 * - a user that came from the file and is no longer in it is deleted, with every session;
 * - a name in the file held by a user made through Register or the API is a conflict: start-up
 *   stops with an error naming the line, and nothing is overwritten.
 * Every instance must have the same file (as with key files): an instance started with an older
 * copy would seed that copy again.
 */
export async function seedFileUsers(store: SeedStore, users: readonly FileUser[], log: EventLog): Promise<void> {
  const inFile = new Set(users.map((u) => u.id));
  for (const user of users) {
    const existing = await store.findUserByUsername(user.username);
    if (!existing) {
      const created = await store.createUser({ id: user.id, username: user.username, passwordHash: user.passwordHash, roles: user.roles, disabled: false, origin: 'file', fileDigest: user.digest }, { skeleton: usernameSkeleton(user.username) });
      if (created === 'confusable') throw new UsersFileError(`${user.where}: the username looks like one already taken (${user.username}); rename one of them`);
      if (created === 'created') log.info({ event: 'file_user_seeded', userId: user.id, change: 'created' }, 'users file: user created');
      continue;
    }
    if (existing.origin !== 'file' || existing.id !== user.id) {
      throw new UsersFileError(`${user.where}: the username belongs to a user created through the API; rename one of them`);
    }
    if (existing.fileDigest === user.digest) continue;
    const newHash = existing.passwordHash !== user.passwordHash;
    await store.updateUser(user.id, { roles: user.roles, fileDigest: user.digest, ...(newHash ? { passwordHash: user.passwordHash, revokeSessions: true } : {}) });
    log.info({ event: 'file_user_seeded', userId: user.id, change: newHash ? 'password_and_roles' : 'roles' }, 'users file: user updated from an edited line');
  }
  for (const id of await store.fileUserIds()) {
    if (inFile.has(id)) continue;
    const deleted = await store.deleteUser(id);
    if (deleted) log.warn({ event: 'file_user_seeded', userId: id, change: 'deleted' }, 'users file: user no longer in the file deleted');
  }
}
