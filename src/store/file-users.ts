import type { UserRecord, UserStore } from './store.js';

/**
 * Users from the users file in front of the store's own: the file is configuration, read by every
 * instance, so its users are never written to a shared store (where an old copy would shadow an
 * edit). A registration cannot take a username the file holds.
 */
export function withFileUsers(store: UserStore, fileUsers: readonly UserRecord[]): UserStore {
  if (fileUsers.length === 0) return store;
  const byName = new Map(fileUsers.map((u) => [u.username, u]));
  return {
    createUser: async (user) => (byName.has(user.username) ? 'exists' : store.createUser(user)),
    findUserByUsername: async (username) => byName.get(username) ?? store.findUserByUsername(username),
  };
}
