import { DEADLINE, PostgresBase } from './base.js';
import { now, onTime } from './records.js';

/**
 * Passkey ceremonies (auth_ceremonies: taken by DELETE … RETURNING, so single use on every
 * instance; swept when expired) and the owner of each credential id (auth_passkeys, gone with the
 * user). The writes carry the caller's deadline: one the service gave up on never lands later.
 */
export class PostgresPasskeys extends PostgresBase {
  async putCeremony(id: string, ceremony: string, ttlMs: number): Promise<void> {
    await this.one(
      'auth_put_ceremony',
      `INSERT INTO auth_ceremonies (id, body, expires_at) SELECT $1::text, $2::text, ${now(4)} + $3::bigint WHERE ${onTime(5)} RETURNING ${onTime(5)}`,
      [id, ceremony, ttlMs, this.fixedNow(), DEADLINE],
    );
  }

  async takeCeremony(id: string): Promise<string | undefined> {
    const rows = await this.one<{ body: string; live: boolean }>(
      'auth_take_ceremony',
      `DELETE FROM auth_ceremonies WHERE id = $1 AND ${onTime(3)} RETURNING body, expires_at > ${now(2)} AS live, ${onTime(3)}`,
      [id, this.fixedNow(), DEADLINE],
    );
    return rows[0]?.live ? rows[0].body : undefined;
  }

  async linkPasskey(credentialId: string, userId: string): Promise<'linked' | 'taken'> {
    const rows = await this.one<{ user_id: string }>(
      'auth_link_passkey',
      // The user's row is locked (FOR KEY SHARE, as the foreign key's check would lock it at the
      // statement's end, after its RETURNING) before the insert: a wait for a login's or an
      // update's lock on it comes before the deadline's last check. A user gone: the foreign key
      // refuses the row, as it did.
      `WITH owner AS (SELECT 1 FROM auth_users WHERE id = $2 FOR KEY SHARE), ins AS (
         INSERT INTO auth_passkeys (credential_id, user_id) SELECT $1::text, $2::text WHERE (SELECT count(*) FROM owner) >= 0 AND ${onTime(3)}
         ON CONFLICT (credential_id) DO NOTHING RETURNING user_id, ${onTime(3)} AS on_time)
       SELECT user_id FROM ins WHERE on_time UNION ALL SELECT user_id FROM auth_passkeys WHERE credential_id = $1`,
      [credentialId, userId, DEADLINE],
    );
    // Nothing seen: another insert of the same id committed after this statement's snapshot.
    const owners = rows.length > 0 ? rows.map((r) => r.user_id) : [await this.passkeyOwner(credentialId)];
    return owners.some((o) => o !== userId) ? 'taken' : 'linked';
  }

  async passkeyOwner(credentialId: string): Promise<string | undefined> {
    const rows = await this.one<{ user_id: string }>('auth_passkey_owner', 'SELECT user_id FROM auth_passkeys WHERE credential_id = $1', [credentialId]);
    return rows[0]?.user_id;
  }

  async unlinkPasskey(credentialId: string, userId: string): Promise<void> {
    await this.one('auth_unlink_passkey', `DELETE FROM auth_passkeys WHERE credential_id = $1 AND user_id = $2 AND ${onTime(3)} RETURNING ${onTime(3)}`, [credentialId, userId, DEADLINE]);
  }
}
