import { isEnabledAdmin } from '../../core/accounts.js';

/**
 * The memory store's enabled admins, users and service accounts together, kept exact by every
 * write. A change that may demote asks `refuses` and applies itself in the same turn (no await in
 * between), so the last-admin rule is atomic in one process. Bound: one entry per admin.
 */
export class AdminSet {
  private readonly ids = new Set<string>();

  /** True (refused) when `keep` is asked and `id` is the only enabled admin. */
  refuses(id: string, keep: boolean | undefined): boolean {
    return keep === true && this.ids.size === 1 && this.ids.has(id);
  }

  /** Records what `id` is after a write (undefined: deleted). */
  note(id: string, record: { readonly roles: readonly string[]; readonly disabled: boolean } | undefined): void {
    if (record && isEnabledAdmin(record)) this.ids.add(id);
    else this.ids.delete(id);
  }

  get size(): number {
    return this.ids.size;
  }
}
