import { isEnabledAdmin, mayDemote, type UserQuery } from '../../core/accounts.js';
import type { LiveUser } from '../../core/records.js';
import { liveAccount, type NewCredential, type ServiceAccountChange, type ServiceAccountRecord, type ServiceAccountUpdate } from '../../core/service-accounts.js';
import { applyServiceAccountChange } from '../service-account-rules.js';
import { DEADLINE, PostgresBase } from './base.js';
import { ACCOUNT, accountOf, now, onTime, type AccountRow } from './records.js';

/** Service accounts: one row each with its credentials as JSON; assertion ids until they expire. */
export class PostgresServiceAccounts extends PostgresBase {
  async createServiceAccount(account: { id: string; name: string; roles: readonly string[]; credential: NewCredential }): Promise<'created' | 'exists'> {
    const rows = await this.one(
      'auth_create_account',
      `INSERT INTO auth_service_accounts (${ACCOUNT})
       SELECT $1::text, $2::text, $3::text[], false, t, 1, jsonb_build_array($4::jsonb || jsonb_build_object('createdAt', t)) FROM (SELECT ${now(5)} AS t) n WHERE ${onTime(6)}
       ON CONFLICT DO NOTHING RETURNING id, ${onTime(6)}`,
      [account.id, account.name, [...account.roles], JSON.stringify(account.credential), this.fixedNow(), DEADLINE],
    );
    return rows.length === 1 ? 'created' : 'exists';
  }

  async getServiceAccount(id: string): Promise<ServiceAccountRecord | undefined> {
    const rows = await this.one<AccountRow>('auth_account_by_id', `SELECT ${ACCOUNT} FROM auth_service_accounts WHERE id = $1`, [id]);
    return rows[0] && accountOf(rows[0]);
  }

  async listServiceAccounts(query: UserQuery): Promise<ServiceAccountRecord[]> {
    return (await this.keysetPage<AccountRow>('auth_list_accounts', ACCOUNT, 'auth_service_accounts', 'name', query)).map(accountOf);
  }

  async updateServiceAccount(id: string, change: ServiceAccountChange): Promise<ServiceAccountUpdate> {
    const guarded = mayDemote(change) && change.keepAnAdmin === true;
    return this.tx(async (q): Promise<ServiceAccountUpdate> => {
      if (guarded) await PostgresBase.lockAdmins(q);
      const rows = await q<AccountRow & { now: number }>('auth_lock_account', `SELECT ${ACCOUNT}, ${now(2)} AS now FROM auth_service_accounts WHERE id = $1 FOR UPDATE`, [id, this.fixedNow()]);
      const row = rows[0];
      if (!row) return { outcome: 'not_found' };
      const current = accountOf(row);
      if (guarded && isEnabledAdmin(current) && !(await PostgresBase.anotherAdmin(q, id))) return { outcome: 'last_admin' };
      const result = applyServiceAccountChange(current, change, row.now);
      if (result.outcome !== 'updated') return result;
      const { account } = result;
      await q('auth_update_account', 'UPDATE auth_service_accounts SET roles = $2::text[], disabled = $3, revision = $4, credentials = $5::jsonb WHERE id = $1', [
        id,
        [...account.roles],
        account.disabled,
        account.revision,
        JSON.stringify(account.credentials),
      ]);
      return result;
    });
  }

  async deleteServiceAccount(id: string, options: { readonly keepAnAdmin?: boolean } = {}): Promise<boolean | 'last_admin'> {
    return this.tx(async (q) => {
      if (options.keepAnAdmin) await PostgresBase.lockAdmins(q);
      const rows = await q<AccountRow>('auth_lock_account_only', `SELECT ${ACCOUNT} FROM auth_service_accounts WHERE id = $1 FOR UPDATE`, [id]);
      const row = rows[0];
      if (!row) return false;
      if (options.keepAnAdmin && isEnabledAdmin(row) && !(await PostgresBase.anotherAdmin(q, id))) return 'last_admin';
      await q('auth_delete_account', 'DELETE FROM auth_service_accounts WHERE id = $1', [id]);
      await q('auth_delete_assertions', 'DELETE FROM auth_assertions WHERE account_id = $1', [id]);
      return true;
    });
  }

  async liveCredential(serviceAccountId: string, credentialId: string): Promise<LiveUser | undefined> {
    const account = await this.getServiceAccount(serviceAccountId);
    return account && liveAccount(account, credentialId);
  }

  /** The jti's row is taken unless a live one holds it: the unique key decides among instances. */
  async useAssertion(serviceAccountId: string, jti: string, expiresAt: number): Promise<boolean> {
    const rows = await this.one(
      'auth_use_assertion',
      `INSERT INTO auth_assertions AS a (account_id, jti, expires_at) SELECT $1::text, $2::text, $3::bigint WHERE ${onTime(5)}
       ON CONFLICT (account_id, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE a.expires_at <= ${now(4)}
       RETURNING ${onTime(5)}`,
      [serviceAccountId, jti, expiresAt, this.fixedNow(), DEADLINE],
    );
    return rows.length === 1;
  }
}
