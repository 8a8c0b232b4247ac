import type { ApiKeyRecord } from '../../core/api-keys.js';
import type { UserRecord } from '../../core/records.js';
import type { ServiceAccountRecord } from '../../core/service-accounts.js';
import { mergeImportedFactor, parseSecrets, type SecondFactorExport } from '../../core/user-secrets.js';
import type { SessionRecord } from '../store.js';
import { ImportConflictError, PostgresBase, SWEEP_BATCH, type Query } from './base.js';
import { ACCOUNT, USER } from './records.js';

export type ImportRecord =
  | ({ readonly kind: 'user'; readonly secondFactor?: SecondFactorExport | undefined } & UserRecord)
  | ({ readonly kind: 'service_account' } & ServiceAccountRecord)
  | ({ readonly kind: 'session' } & SessionRecord)
  | ({ readonly kind: 'api_key' } & ApiKeyRecord);

export interface ImportCounts {
  /** New here. */
  users: number;
  serviceAccounts: number;
  /** Sessions new here, or here at an older generation. */
  sessions: number;
  /** API keys new here (one here already keeps the later use). */
  apiKeys: number;
  /** Users and service accounts here at an older revision, brought up to the export's. */
  updated: number;
  /** Records here already as the export has them (an import run twice changes nothing). */
  present: number;
}

/**
 * Moving in (`grpc-auth import`): records of an export written as they were, ids, hashes and
 * times kept; run again with a newer export, what changed since comes across.
 */
export class PostgresImport extends PostgresBase {
  /**
   * Writes exported users, service accounts and sessions in transactions of a thousand. A user or
   * account already here is brought to the export's state when the export's revision is newer
   * (a password changed, roles, disabled, sessions revoked), and left alone otherwise; a session
   * here is replaced by the export's when the export's generation is newer (it was refreshed
   * since). A user's second factor merges (mergeImportedFactor: a recovery code spent on either
   * side stays spent). A name that belongs to another id here stops the import with both named,
   * before anything is written. A user gets the skeleton of their name unless another holds it.
   */
  async importRecords(records: readonly ImportRecord[], skeletonOf: (username: string) => string, exportedAt: number): Promise<ImportCounts> {
    for (let i = 0; i < records.length; i += SWEEP_BATCH) await this.checkNames(records.slice(i, i + SWEEP_BATCH));
    const counts: ImportCounts = { users: 0, serviceAccounts: 0, sessions: 0, apiKeys: 0, updated: 0, present: 0 };
    for (let i = 0; i < records.length; i += SWEEP_BATCH) {
      const batch = records.slice(i, i + SWEEP_BATCH);
      const done = await this.tx(async (q) => {
        const c: ImportCounts = { users: 0, serviceAccounts: 0, sessions: 0, apiKeys: 0, updated: 0, present: 0 };
        for (const r of batch) {
          if (r.kind === 'user') await PostgresImport.importUser(q, r, skeletonOf, exportedAt, c);
          else if (r.kind === 'service_account') await PostgresImport.importAccount(q, r, c);
          else if (r.kind === 'api_key') await PostgresImport.importApiKey(q, r, c);
          else await this.importSession(q, r, c);
        }
        return c;
      });
      for (const key of Object.keys(counts) as Array<keyof ImportCounts>) counts[key] += done[key];
    }
    return counts;
  }

  /** Names held here by other ids stop the import before anything is written. */
  private async checkNames(batch: readonly ImportRecord[]): Promise<void> {
    const users = batch.filter((r) => r.kind === 'user');
    const accounts = batch.filter((r) => r.kind === 'service_account');
    const held = [
      ...(await this.one<{ id: string; name: string }>('auth_import_names', 'SELECT id, username AS name FROM auth_users WHERE username = ANY ($1::text[])', [users.map((u) => u.username)])).map((h) => ({ ...h, kind: 'user' })),
      ...(await this.one<{ id: string; name: string }>('auth_import_account_names', 'SELECT id, name FROM auth_service_accounts WHERE name = ANY ($1::text[])', [accounts.map((a) => a.name)])).map((h) => ({ ...h, kind: 'service_account' })),
    ];
    for (const h of held) {
      const r = batch.find((x) => x.kind === h.kind && (x.kind === 'user' ? x.username : x.kind === 'service_account' ? x.name : '') === h.name)!;
      if (r.id !== h.id) throw new ImportConflictError(`${h.kind === 'user' ? 'user' : 'service account'} ${r.id}: the name ${JSON.stringify(h.name)} belongs to ${h.id} in this database`);
    }
  }

  private static async importUser(q: Query, r: Extract<ImportRecord, { kind: 'user' }>, skeletonOf: (username: string) => string, exportedAt: number, c: ImportCounts): Promise<void> {
    const insert = (skeleton: string | null) =>
      q(
        'auth_import_user',
        `INSERT INTO auth_users (${USER}, skeleton) VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING RETURNING id`,
        [r.id, r.username, r.passwordHash, [...r.roles], r.disabled, r.generation, r.revision, r.origin, r.fileDigest ?? null, r.createdAt, r.passwordChangedAt, skeleton],
      );
    if ((await insert(skeletonOf(r.username))).length === 1) {
      c.users++;
      // A user's second factor goes in with the user, in the same transaction (never a user without the factor they had).
      if (r.secondFactor) await q('auth_import_secrets', "INSERT INTO auth_user_secrets (user_id, version, data) VALUES ($1, nextval('auth_user_secrets_version'), $2)", [r.id, JSON.stringify(r.secondFactor)]);
      await PostgresImport.linkPasskeys(q, r.id, r.secondFactor);
      return;
    }
    const [holder] = await q<{ id: string }>('auth_import_user_holder', 'SELECT id FROM auth_users WHERE id = $1 OR username = $2 ORDER BY id = $1 DESC', [r.id, r.username]);
    if (holder && holder.id !== r.id) throw new ImportConflictError(`user ${r.id}: the name ${JSON.stringify(r.username)} belongs to ${holder.id} in this database`);
    if (!holder) {
      // Only the skeleton was taken (by a look-alike made before skeletons were kept): in without one.
      if ((await insert(null)).length === 1) c.users++;
      if (r.secondFactor) await q('auth_import_secrets', "INSERT INTO auth_user_secrets (user_id, version, data) VALUES ($1, nextval('auth_user_secrets_version'), $2)", [r.id, JSON.stringify(r.secondFactor)]);
      await PostgresImport.linkPasskeys(q, r.id, r.secondFactor);
      return;
    }
    // Here already: brought to the export's state when that is newer (its revision moves with every change).
    const updated = await q(
      'auth_import_user_update',
      `UPDATE auth_users SET password_hash = $2, roles = $3::text[], disabled = $4, generation = $5, revision = $6, file_digest = $7, password_changed_at = $8
       WHERE id = $1 AND revision < $6 RETURNING id`,
      [r.id, r.passwordHash, [...r.roles], r.disabled, r.generation, r.revision, r.fileDigest ?? null, r.passwordChangedAt],
    );
    const factorChanged = await PostgresImport.mergeFactor(q, r.id, r.secondFactor, exportedAt);
    if (updated.length === 1 || factorChanged) c.updated++;
    else c.present++;
  }

  /** The user's second factor merged with the export's (see mergeImportedFactor); whether anything changed. */
  private static async mergeFactor(q: Query, userId: string, imported: SecondFactorExport | undefined, exportedAt: number): Promise<boolean> {
    const [row] = await q<{ version: number; data: string }>('auth_import_read_secrets', 'SELECT version, data FROM auth_user_secrets WHERE user_id = $1 FOR UPDATE', [userId]);
    const existing = parseSecrets(row ? { version: row.version, data: row.data } : undefined);
    const merged = mergeImportedFactor(existing, imported, exportedAt);
    if (JSON.stringify(merged ?? {}) === JSON.stringify(existing)) return false;
    if (merged === undefined) await q('auth_import_delete_secrets', 'DELETE FROM auth_user_secrets WHERE user_id = $1', [userId]);
    else if (row) await q('auth_import_update_secrets', "UPDATE auth_user_secrets SET version = nextval('auth_user_secrets_version'), data = $2 WHERE user_id = $1", [userId, JSON.stringify(merged)]);
    else await q('auth_import_secrets', "INSERT INTO auth_user_secrets (user_id, version, data) VALUES ($1, nextval('auth_user_secrets_version'), $2)", [userId, JSON.stringify(merged)]);
    await PostgresImport.linkPasskeys(q, userId, merged);
    return true;
  }

  /**
   * auth_passkeys as the user's document says: a sign-in starts from the credential id. A
   * credential id another user holds here stays theirs (and this user's passkey cannot sign in).
   */
  private static async linkPasskeys(q: Query, userId: string, doc: Pick<SecondFactorExport, 'webauthn'> | undefined): Promise<void> {
    const ids = (doc?.webauthn?.passkeys ?? []).map((p) => p.id);
    await q('auth_import_unlink_passkeys', 'DELETE FROM auth_passkeys WHERE user_id = $1 AND NOT (credential_id = ANY ($2::text[]))', [userId, ids]);
    if (ids.length > 0) await q('auth_import_link_passkeys', 'INSERT INTO auth_passkeys (credential_id, user_id) SELECT unnest($1::text[]), $2 ON CONFLICT (credential_id) DO NOTHING', [ids, userId]);
  }

  /** An API key: new here, or here already (the later use kept; one revoked here stays revoked only if the export is older). */
  private static async importApiKey(q: Query, r: Extract<ImportRecord, { kind: 'api_key' }>, c: ImportCounts): Promise<void> {
    const rows = await q<{ inserted: boolean }>(
      'auth_import_api_key',
      `INSERT INTO auth_api_keys (id, owner_id, name, roles, hash, created_at, expires_at, last_used_at, owner_generation) VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, $9)
       ON CONFLICT (id) DO UPDATE SET last_used_at = greatest(auth_api_keys.last_used_at, EXCLUDED.last_used_at) RETURNING (xmax = 0) AS inserted`,
      [r.id, r.ownerId, r.name, [...r.roles], r.hash, r.createdAt, r.expiresAt, r.lastUsedAt ?? null, r.ownerGeneration],
    );
    if (rows[0]?.inserted) c.apiKeys++;
    else c.present++;
  }

  private static async importAccount(q: Query, r: Extract<ImportRecord, { kind: 'service_account' }>, c: ImportCounts): Promise<void> {
    const inserted = await q(
      'auth_import_account',
      `INSERT INTO auth_service_accounts (${ACCOUNT}) VALUES ($1, $2, $3::text[], $4, $5, $6, $7::jsonb) ON CONFLICT DO NOTHING RETURNING id`,
      [r.id, r.name, [...r.roles], r.disabled, r.createdAt, r.revision, JSON.stringify(r.credentials)],
    );
    if (inserted.length === 1) {
      c.serviceAccounts++;
      return;
    }
    const [holder] = await q<{ id: string }>('auth_import_account_holder', 'SELECT id FROM auth_service_accounts WHERE id = $1 OR name = $2 ORDER BY id = $1 DESC', [r.id, r.name]);
    if (holder?.id !== r.id) throw new ImportConflictError(`service account ${r.id}: the name ${JSON.stringify(r.name)} belongs to ${holder?.id ?? 'another account'} in this database`);
    const updated = await q(
      'auth_import_account_update',
      'UPDATE auth_service_accounts SET roles = $2::text[], disabled = $3, revision = $4, credentials = $5::jsonb WHERE id = $1 AND revision < $4 RETURNING id',
      [r.id, [...r.roles], r.disabled, r.revision, JSON.stringify(r.credentials)],
    );
    if (updated.length === 1) c.updated++;
    else c.present++;
  }

  /** A session, unless one here is at its generation or newer; dropped when its user is not here (deleted since). */
  private async importSession(q: Query, r: Extract<ImportRecord, { kind: 'session' }>, c: ImportCounts): Promise<void> {
    const written = await q(
      'auth_import_session',
      `INSERT INTO auth_sessions AS s (id, user_id, user_generation, generation, token_hash, previous_hash, previous_rotated_at, previous_sealed,
                                      created_at, last_refreshed_at, expires_at, token_expires_at, purge_at, client_address, user_agent, amr)
       SELECT $1::text, $2::text, $3::integer, $4::integer, $5::text, $6::text, $7::bigint, $8::text, $9::bigint, $10::bigint, $11::bigint, $12::bigint, least($11::bigint, $12::bigint + $13::bigint), $14::text, $15::text, $16::text
       WHERE EXISTS (SELECT 1 FROM auth_users WHERE id = $2)
       ON CONFLICT (id) DO UPDATE SET
         user_generation = EXCLUDED.user_generation, generation = EXCLUDED.generation, token_hash = EXCLUDED.token_hash,
         previous_hash = EXCLUDED.previous_hash, previous_rotated_at = EXCLUDED.previous_rotated_at, previous_sealed = EXCLUDED.previous_sealed,
         last_refreshed_at = EXCLUDED.last_refreshed_at, token_expires_at = EXCLUDED.token_expires_at, purge_at = EXCLUDED.purge_at
       WHERE s.user_id = EXCLUDED.user_id AND s.generation < EXCLUDED.generation
       RETURNING id`,
      [
        r.id,
        r.userId,
        r.userGeneration,
        r.generation,
        r.tokenHash,
        r.previous?.hash ?? null,
        r.previous?.rotatedAt ?? null,
        r.previous?.sealed ?? null,
        r.createdAt,
        r.lastRefreshedAt,
        r.expiresAt,
        r.tokenExpiresAt,
        this.grace,
        r.clientAddress,
        r.userAgent,
        r.amr.join(' '),
      ],
    );
    if (written.length === 1) c.sessions++;
    else c.present++;
  }
}
