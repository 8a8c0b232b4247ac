import { mayDemote, type UpdateResult, type UserChange, type UserQuery } from '../../core/accounts.js';
import type { NewUser, UserRecord } from '../../core/records.js';
import { MemoryBase } from './base.js';
import { UserEntry } from './records.js';

/** Users: by id, by name in order, by skeleton; changed with what a change implies for their sessions. */
export class MemoryUsers extends MemoryBase {
  async createUser(user: NewUser, claims?: { readonly skeleton: string }): Promise<'created' | 'exists' | 'confusable'> {
    if (this.byName.has(user.username) || this.byId.has(user.id)) return 'exists';
    if (claims && this.bySkeleton.has(claims.skeleton)) return 'confusable';
    const now = this.now();
    const entry = new UserEntry(Object.freeze({ ...user, roles: this.rolesOf(user.roles), createdAt: now, passwordChangedAt: now, generation: 0, revision: 1 }));
    if (claims) {
      entry.skeleton = claims.skeleton;
      this.bySkeleton.set(claims.skeleton, entry);
    }
    this.byId.set(user.id, entry);
    this.byName.set(user.username, entry);
    this.admins.note(user.id, entry.record);
    return 'created';
  }

  async findUserByUsername(username: string): Promise<UserRecord | undefined> {
    return this.byName.get(username)?.record;
  }

  async getUser(userId: string): Promise<UserRecord | undefined> {
    return this.byId.get(userId)?.record;
  }

  async listUsers(query: UserQuery): Promise<UserRecord[]> {
    const out: UserRecord[] = [];
    const start = query.after !== undefined && query.after >= query.prefix ? query.after : query.prefix;
    for (const [name, entry] of this.byName.entries(start)) {
      if (!name.startsWith(query.prefix) || out.length >= query.limit) break;
      if (name !== query.after) out.push(entry.record);
    }
    return out;
  }

  async updateUser(userId: string, change: UserChange): Promise<UpdateResult> {
    const entry = this.byId.get(userId);
    if (!entry) return { outcome: 'not_found' };
    const current = entry.record;
    if (change.ifRevision !== undefined && change.ifRevision !== current.revision) return { outcome: 'conflict' };
    if (mayDemote(change) && this.admins.refuses(userId, change.keepAnAdmin)) return { outcome: 'last_admin' };
    const generation = change.revokeSessions ? current.generation + 1 : current.generation;
    entry.replace(
      Object.freeze({
        ...current,
        ...(change.roles ? { roles: this.rolesOf(change.roles) } : {}),
        ...(change.passwordHash !== undefined ? { passwordHash: change.passwordHash, passwordChangedAt: this.now() } : {}),
        ...(change.disabled !== undefined ? { disabled: change.disabled } : {}),
        ...(change.fileDigest !== undefined ? { fileDigest: change.fileDigest } : {}),
        generation,
        revision: current.revision + 1,
      }),
    );
    if (change.keepSession !== undefined) {
      const kept = this.sessions.get(change.keepSession);
      // The calling session moves to the new generation in the same step: it never lapses.
      if (kept && kept.user === entry) kept.userGeneration = generation;
    }
    this.admins.note(userId, entry.record);
    return { outcome: 'updated', user: entry.record };
  }

  async fileUserIds(): Promise<string[]> {
    return [...this.byId.values()].filter((u) => u.record.origin === 'file').map((u) => u.record.id);
  }

  async deleteUser(userId: string, options: { readonly keepAnAdmin?: boolean } = {}): Promise<UserRecord | undefined | 'last_admin'> {
    const entry = this.byId.get(userId);
    if (!entry) return undefined;
    if (this.admins.refuses(userId, options.keepAnAdmin)) return 'last_admin';
    this.admins.note(userId, undefined);
    entry.deleted = true;
    this.byId.delete(userId);
    this.byName.delete(entry.record.username);
    if (entry.skeleton !== undefined) this.bySkeleton.delete(entry.skeleton);
    for (let s = entry.head; s; s = s.next) this.sessions.delete(s.id);
    entry.head = undefined;
    return entry.record;
  }
}
