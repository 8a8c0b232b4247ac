/**
 * What a store tells the service around it (all optional): metrics and logs listen. Its own
 * module, free of any driver's types, so the package's public types never name them.
 */
export interface StoreObserver {
  /** The store now writes to `to` (a failover, or the first host that answered as writable). */
  switched?(from: string, to: string): void;
  /** A transaction ran again after a serialization failure or a deadlock. */
  retried?(sqlState: string): void;
  /** A connection came from the pool after `waitMs`. */
  acquired?(waitMs: number): void;
  /** An operation failed: `cause` as causeOf names it (timeout, connection, late, sqlstate_<class>). */
  failed?(cause: string): void;
  /** PgBouncer refused the startup parameters: the store now works as behind a pooler in transaction mode. */
  poolerDetected?(): void;
  /** A sweep deleted these rows, by table. */
  swept?(rows: Readonly<Record<string, number>>): void;
}
