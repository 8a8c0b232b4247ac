import type { UserSecretsRecord } from '../../core/user-secrets.js';
import { MemoryBase } from './base.js';

/** Each user's secrets document, kept on the user's entry (gone with it), changed by compare-and-set. */
export class MemoryUserSecrets extends MemoryBase {
  async readUserSecrets(userId: string): Promise<UserSecretsRecord | undefined> {
    return this.byId.get(userId)?.secrets;
  }

  async writeUserSecrets(userId: string, ifVersion: number, data: string | undefined): Promise<'written' | 'conflict' | 'user_gone'> {
    const entry = this.byId.get(userId);
    if (!entry) return 'user_gone';
    if ((entry.secrets?.version ?? 0) !== ifVersion) return 'conflict';
    // One sequence for the whole store: a user made again with a deleted one's id starts past it.
    entry.secrets = data === undefined ? undefined : { version: ++this.secretsVersion, data };
    return 'written';
  }
}
