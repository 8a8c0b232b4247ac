import type { ApiKeyRecord } from '../../core/api-keys.js';
import type { LiveUser } from '../../core/records.js';
import { DEADLINE, PostgresBase } from './base.js';
import { now, onTime } from './records.js';

const KEY = 'id, owner_id, name, roles, hash, created_at, expires_at, owner_generation, last_used_at';

interface KeyRow {
  id: string;
  owner_id: string;
  name: string;
  roles: string[];
  hash: string;
  created_at: string;
  expires_at: string;
  owner_generation: string;
  last_used_at: string | null;
}

const recordOf = (r: KeyRow): ApiKeyRecord => ({
  id: r.id,
  ownerId: r.owner_id,
  name: r.name,
  roles: r.roles,
  hash: r.hash,
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
  ownerGeneration: Number(r.owner_generation),
  ...(r.last_used_at !== null ? { lastUsedAt: Number(r.last_used_at) } : {}),
});

/** The owner exists (a user or a service account). */
const OWNER = `(EXISTS (SELECT 1 FROM auth_users WHERE id = $2) OR EXISTS (SELECT 1 FROM auth_service_accounts WHERE id = $2))`;

/** API keys (auth_api_keys): one row a key; the sweeper deletes expired ones and those of owners gone. */
export class PostgresApiKeys extends PostgresBase {
  /** One owner's creates in turn (a transaction-scoped advisory lock): the limit holds under concurrency. */
  async createApiKey(key: ApiKeyRecord, maxPerOwner: number): Promise<'created' | 'limit' | 'owner_gone'> {
    const rows = await this.tx(async (q) => {
      await q('auth_lock_api_key_owner', "SELECT pg_advisory_xact_lock(hashtextextended('auth_api_keys:' || $1, 0))", [key.ownerId]);
      return q<{ owner: boolean; inserted: boolean }>(
      'auth_create_api_key',
      `WITH ins AS (
         INSERT INTO auth_api_keys (${KEY})
         SELECT $1, $2, $3, $4::text[], $5, $6, $7, $11, NULL
         WHERE ${OWNER} AND (SELECT count(*) FROM auth_api_keys WHERE owner_id = $2 AND expires_at > ${now(9)}) < $8 AND ${onTime(10)}
         RETURNING 1)
       SELECT ${OWNER} AS owner, EXISTS (SELECT 1 FROM ins) AS inserted`,
      [key.id, key.ownerId, key.name, [...key.roles], key.hash, key.createdAt, key.expiresAt, maxPerOwner, this.fixedNow(), DEADLINE, key.ownerGeneration],
      );
    });
    const row = rows[0]!;
    return row.inserted ? 'created' : row.owner ? 'limit' : 'owner_gone';
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    const rows = await this.one<KeyRow>('auth_get_api_key', `SELECT ${KEY} FROM auth_api_keys WHERE id = $1`, [id]);
    return rows[0] && recordOf(rows[0]);
  }

  async listApiKeys(ownerId: string): Promise<ApiKeyRecord[]> {
    const rows = await this.one<KeyRow>('auth_list_api_keys', `SELECT ${KEY} FROM auth_api_keys WHERE owner_id = $1 AND expires_at > ${now(2)} ORDER BY created_at, id`, [ownerId, this.fixedNow()]);
    return rows.map(recordOf);
  }

  async revokeApiKey(ownerId: string, id: string): Promise<boolean> {
    return (await this.changed('auth_revoke_api_key', `DELETE FROM auth_api_keys WHERE id = $1 AND owner_id = $2 AND ${onTime(3)} RETURNING ${onTime(3)}`, [id, ownerId, DEADLINE])) === 1;
  }

  async touchApiKey(id: string, at: number): Promise<void> {
    await this.changed('auth_touch_api_key', `UPDATE auth_api_keys SET last_used_at = $2 WHERE id = $1 AND ${onTime(3)} RETURNING ${onTime(3)}`, [id, at, DEADLINE]);
  }

  async liveApiKey(ownerId: string, id: string): Promise<LiveUser | undefined> {
    const rows = await this.one<{ id: string; username: string; roles: string[]; revision: string }>(
      'auth_live_api_key',
      `SELECT coalesce(u.id, a.id) AS id, coalesce(u.username, a.name) AS username, coalesce(u.roles, a.roles) AS roles, coalesce(u.revision, a.revision) AS revision
       FROM auth_api_keys k
       LEFT JOIN auth_users u ON u.id = k.owner_id AND NOT u.disabled AND u.generation = k.owner_generation
       LEFT JOIN auth_service_accounts a ON a.id = k.owner_id AND NOT a.disabled
       WHERE k.id = $1 AND k.owner_id = $2 AND k.expires_at > ${now(3)} AND (u.id IS NOT NULL OR a.id IS NOT NULL)`,
      [id, ownerId, this.fixedNow()],
    );
    const r = rows[0];
    return r && { id: r.id, username: r.username, roles: r.roles, revision: Number(r.revision) };
  }
}
