import { isEnabledAdmin, mayDemote, type UpdateResult, type UserChange, type UserQuery } from '../../core/accounts.js';
import type { NewUser, UserRecord } from '../../core/records.js';
import { DEADLINE, PostgresBase } from './base.js';
import { now, onTime, USER, userOf, type UserRow } from './records.js';

/** Users: one row each (unique name and skeleton); changes lock the row, and the admin guard when they may demote. */
export class PostgresUsers extends PostgresBase {
  async createUser(user: NewUser, claims?: { readonly skeleton: string }): Promise<'created' | 'exists' | 'confusable'> {
    const inserted = await this.one(
      'auth_create_user',
      `INSERT INTO auth_users (${USER}, skeleton)
       SELECT $1::text, $2::text, $3::text, $4::text[], $5::boolean, 0, 1, $6::text, $7::text, t, t, $8::text FROM (SELECT ${now(9)} AS t) n WHERE ${onTime(10)}
       ON CONFLICT DO NOTHING RETURNING id, ${onTime(10)}`,
      [user.id, user.username, user.passwordHash, [...user.roles], user.disabled, user.origin, user.fileDigest ?? null, claims?.skeleton ?? null, this.fixedNow(), DEADLINE],
    );
    if (inserted.length === 1) return 'created';
    // Which unique key was taken: the name or id ("exists") before the skeleton ("confusable").
    const taken = await this.one('auth_user_taken', 'SELECT 1 FROM auth_users WHERE id = $1 OR username = $2', [user.id, user.username]);
    return taken.length > 0 ? 'exists' : 'confusable';
  }

  async findUserByUsername(username: string): Promise<UserRecord | undefined> {
    const rows = await this.one<UserRow>('auth_user_by_name', `SELECT ${USER} FROM auth_users WHERE username = $1`, [username]);
    return rows[0] && userOf(rows[0]);
  }

  async getUser(userId: string): Promise<UserRecord | undefined> {
    const rows = await this.one<UserRow>('auth_user_by_id', `SELECT ${USER} FROM auth_users WHERE id = $1`, [userId]);
    return rows[0] && userOf(rows[0]);
  }

  async listUsers(query: UserQuery): Promise<UserRecord[]> {
    return (await this.keysetPage<UserRow>('auth_list_users', USER, 'auth_users', 'username', query)).map(userOf);
  }

  async updateUser(userId: string, change: UserChange): Promise<UpdateResult> {
    const guarded = mayDemote(change) && change.keepAnAdmin === true;
    return this.tx(async (q) => {
      if (guarded) await PostgresBase.lockAdmins(q);
      const rows = await q<UserRow>('auth_lock_user', `SELECT ${USER} FROM auth_users WHERE id = $1 FOR UPDATE`, [userId]);
      const current = rows[0];
      if (!current) return { outcome: 'not_found' };
      if (change.ifRevision !== undefined && change.ifRevision !== current.revision) return { outcome: 'conflict' };
      if (guarded && isEnabledAdmin(current) && !(await PostgresBase.anotherAdmin(q, userId))) return { outcome: 'last_admin' };
      const [updated] = await q<UserRow>(
        'auth_update_user',
        `UPDATE auth_users SET
           roles = coalesce($2::text[], roles),
           password_hash = coalesce($3, password_hash),
           password_changed_at = CASE WHEN $3::text IS NULL THEN password_changed_at ELSE ${now(7)} END,
           disabled = coalesce($4, disabled),
           file_digest = coalesce($5, file_digest),
           generation = generation + $6,
           revision = revision + 1
         WHERE id = $1 RETURNING ${USER}`,
        [userId, change.roles ? [...change.roles] : null, change.passwordHash ?? null, change.disabled ?? null, change.fileDigest ?? null, change.revokeSessions ? 1 : 0, this.fixedNow()],
      );
      if (change.revokeSessions) {
        // The calling session moves to the new generation in the same step (it never lapses); the
        // others are swept once their access tokens have expired (until then a refresh says "revoked").
        await q(
          'auth_revoke_all',
          `UPDATE auth_sessions SET
             user_generation = CASE WHEN id = $2 THEN $3 ELSE user_generation END,
             purge_at = CASE WHEN id = $2 THEN purge_at ELSE least(purge_at, ${now(5)} + $4) END
           WHERE user_id = $1`,
          [userId, change.keepSession ?? null, updated!.generation, this.grace, this.fixedNow()],
        );
      } else if (change.keepSession !== undefined) {
        await q('auth_keep_session', 'UPDATE auth_sessions SET user_generation = $3 WHERE id = $2 AND user_id = $1', [userId, change.keepSession, updated!.generation]);
      }
      return { outcome: 'updated', user: userOf(updated!) };
    });
  }

  async fileUserIds(): Promise<string[]> {
    const rows = await this.one<{ id: string }>('auth_file_users', "SELECT id FROM auth_users WHERE origin = 'file' ORDER BY id", []);
    return rows.map((r) => r.id);
  }

  /** The user, their name, their skeleton and (by the foreign key) every session of theirs go in one statement. */
  async deleteUser(userId: string, options: { readonly keepAnAdmin?: boolean } = {}): Promise<UserRecord | undefined | 'last_admin'> {
    return this.tx(async (q) => {
      if (options.keepAnAdmin) await PostgresBase.lockAdmins(q);
      const rows = await q<UserRow>('auth_lock_user', `SELECT ${USER} FROM auth_users WHERE id = $1 FOR UPDATE`, [userId]);
      const current = rows[0];
      if (!current) return undefined;
      if (options.keepAnAdmin && isEnabledAdmin(current) && !(await PostgresBase.anotherAdmin(q, userId))) return 'last_admin';
      await q('auth_delete_user', 'DELETE FROM auth_users WHERE id = $1', [userId]);
      return userOf(current);
    });
  }
}
