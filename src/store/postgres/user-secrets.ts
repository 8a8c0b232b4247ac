import type { UserSecretsRecord } from '../../core/user-secrets.js';
import { PostgresBase } from './base.js';

/** Each user's secrets document: a row deleted with the user, changed by compare-and-set on its version. */
export class PostgresUserSecrets extends PostgresBase {
  async readUserSecrets(userId: string): Promise<UserSecretsRecord | undefined> {
    // version is a bigint (node-postgres reads it as text); every value the sequence gives is below 2^53.
    const rows = await this.one<{ version: string; data: string }>('auth_read_secrets', 'SELECT version, data FROM auth_user_secrets WHERE user_id = $1', [userId]);
    return rows[0] ? { version: Number(rows[0].version), data: rows[0].data } : undefined;
  }

  /** Compare-and-set on the version, with the user's row share-locked so a delete cannot pass between. */
  async writeUserSecrets(userId: string, ifVersion: number, data: string | undefined): Promise<'written' | 'conflict' | 'user_gone'> {
    return this.tx(async (q) => {
      if ((await q('auth_secrets_user', 'SELECT 1 FROM auth_users WHERE id = $1 FOR SHARE', [userId])).length === 0) return 'user_gone';
      let changed: unknown[];
      if (data === undefined) {
        changed = await q('auth_delete_secrets', 'DELETE FROM auth_user_secrets WHERE user_id = $1 AND version = $2 RETURNING 1', [userId, ifVersion]);
      } else if (ifVersion === 0) {
        // Versions come from one sequence: never repeated, not even for a user made again with a deleted one's id.
        changed = await q('auth_insert_secrets', "INSERT INTO auth_user_secrets (user_id, version, data) VALUES ($1, nextval('auth_user_secrets_version'), $2) ON CONFLICT (user_id) DO NOTHING RETURNING 1", [userId, data]);
      } else {
        changed = await q('auth_update_secrets', "UPDATE auth_user_secrets SET version = nextval('auth_user_secrets_version'), data = $3 WHERE user_id = $1 AND version = $2 RETURNING 1", [userId, ifVersion, data]);
      }
      return changed.length === 1 ? 'written' : 'conflict';
    });
  }
}
