import { PostgresBase } from './base.js';

/** The maintenance switch (`grpc-auth maintenance`): one row of auth_flags every instance reads. */
export class PostgresMaintenance extends PostgresBase {
  async readMaintenance(): Promise<boolean> {
    const rows = await this.one<{ on: boolean }>('auth_read_maintenance', "SELECT value AS on FROM auth_flags WHERE name = 'maintenance'", []);
    return rows[0]?.on ?? false;
  }

  async setMaintenance(on: boolean): Promise<void> {
    await this.one('auth_set_maintenance', "INSERT INTO auth_flags (name, value) VALUES ('maintenance', $1) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value", [on]);
  }
}
