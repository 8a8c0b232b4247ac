import type { UserRecord } from '../../core/records.js';
import type { ServiceAccountRecord } from '../../core/service-accounts.js';
import type { SecondFactorExport } from '../../core/user-secrets.js';
import { ImportConflictError, PostgresBase, SWEEP_BATCH } from './base.js';
import { ACCOUNT, USER } from './records.js';

/** Moving in (`grpc-auth import`): records of an export written as they were, ids, hashes and times kept. */
export class PostgresImport extends PostgresBase {
  /**
   * Writes exported users and service accounts as they were (ids, hashes, times, credentials),
   * in transactions of a thousand. One already here by id is left alone (counted as present); a
   * name that belongs to another id here stops the import with both named. A user gets the
   * skeleton of their name unless another user holds it (users made before skeletons were kept).
   */
  async importRecords(
    records: ReadonlyArray<({ readonly kind: 'user'; readonly secondFactor?: SecondFactorExport | undefined } & UserRecord) | ({ readonly kind: 'service_account' } & ServiceAccountRecord)>,
    skeletonOf: (username: string) => string,
  ): Promise<{ users: number; serviceAccounts: number; present: number }> {
    // Names held here by other ids stop the import before anything is written.
    for (let i = 0; i < records.length; i += SWEEP_BATCH) {
      const batch = records.slice(i, i + SWEEP_BATCH);
      const users = batch.filter((r) => r.kind === 'user');
      const accounts = batch.filter((r) => r.kind === 'service_account');
      const held = [
        ...(await this.one<{ id: string; name: string }>('auth_import_names', 'SELECT id, username AS name FROM auth_users WHERE username = ANY ($1::text[])', [users.map((u) => u.username)])).map((h) => ({ ...h, kind: 'user' })),
        ...(await this.one<{ id: string; name: string }>('auth_import_account_names', 'SELECT id, name FROM auth_service_accounts WHERE name = ANY ($1::text[])', [accounts.map((a) => a.name)])).map((h) => ({ ...h, kind: 'service_account' })),
      ];
      for (const h of held) {
        const r = batch.find((x) => x.kind === h.kind && (x.kind === 'user' ? x.username : x.name) === h.name)!;
        if (r.id !== h.id) throw new ImportConflictError(`${h.kind === 'user' ? 'user' : 'service account'} ${r.id}: the name ${JSON.stringify(h.name)} belongs to ${h.id} in this database`);
      }
    }
    const counts = { users: 0, serviceAccounts: 0, present: 0 };
    for (let i = 0; i < records.length; i += SWEEP_BATCH) {
      const batch = records.slice(i, i + SWEEP_BATCH);
      const done = await this.tx(async (q) => {
        const c = { users: 0, serviceAccounts: 0, present: 0 };
        for (const r of batch) {
          if (r.kind === 'user') {
            const insert = (skeleton: string | null) =>
              q(
                'auth_import_user',
                `INSERT INTO auth_users (${USER}, skeleton) VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING RETURNING id`,
                [r.id, r.username, r.passwordHash, [...r.roles], r.disabled, r.generation, r.revision, r.origin, r.fileDigest ?? null, r.createdAt, r.passwordChangedAt, skeleton],
              );
            // A user's second factor goes in with the user, in the same transaction (never a user without the factor they had).
            const inserted = async () => {
              c.users++;
              if (r.secondFactor) await q('auth_import_secrets', "INSERT INTO auth_user_secrets (user_id, version, data) VALUES ($1, nextval('auth_user_secrets_version'), $2)", [r.id, JSON.stringify(r.secondFactor)]);
            };
            if ((await insert(skeletonOf(r.username))).length === 1) {
              await inserted();
              continue;
            }
            const [holder] = await q<{ id: string }>('auth_import_user_holder', 'SELECT id FROM auth_users WHERE id = $1 OR username = $2 ORDER BY id = $1 DESC', [r.id, r.username]);
            if (holder?.id === r.id) c.present++;
            else if (holder) throw new ImportConflictError(`user ${r.id}: the name ${JSON.stringify(r.username)} belongs to ${holder.id} in this database`);
            else if ((await insert(null)).length === 1) await inserted();
          } else {
            const inserted = await q(
              'auth_import_account',
              `INSERT INTO auth_service_accounts (${ACCOUNT}) VALUES ($1, $2, $3::text[], $4, $5, $6, $7::jsonb) ON CONFLICT DO NOTHING RETURNING id`,
              [r.id, r.name, [...r.roles], r.disabled, r.createdAt, r.revision, JSON.stringify(r.credentials)],
            );
            if (inserted.length === 1) {
              c.serviceAccounts++;
              continue;
            }
            const [holder] = await q<{ id: string }>('auth_import_account_holder', 'SELECT id FROM auth_service_accounts WHERE id = $1 OR name = $2 ORDER BY id = $1 DESC', [r.id, r.name]);
            if (holder?.id === r.id) c.present++;
            else throw new ImportConflictError(`service account ${r.id}: the name ${JSON.stringify(r.name)} belongs to ${holder?.id ?? 'another account'} in this database`);
          }
        }
        return c;
      });
      counts.users += done.users;
      counts.serviceAccounts += done.serviceAccounts;
      counts.present += done.present;
    }
    return counts;
  }
}
