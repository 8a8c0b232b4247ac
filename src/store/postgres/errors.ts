import { AuthError } from '../../errors.js';

/*
 * What a node-postgres error says about the connection and the server: whether the connection is
 * fit for reuse, whether trying again can help, whether the server behind it is still the one to
 * write to, and the cause a metric or a log line names.
 */

/** A statement that ran past the deadline its caller gave it (auth_on_time, migration 0004): it wrote nothing. */
export const LATE = 'AU001';

/** The error's SQLSTATE, when the server sent one. */
export function sqlStateOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Whether a failed query leaves its connection fit for the next one: a statement the server
 * refused or cancelled does (it has a SQLSTATE of its own), a broken or timed-out connection
 * (no SQLSTATE, class 08, or the server shutting down) does not and is dropped from the pool.
 */
export function connectionBroken(err: unknown): Error | undefined {
  if (err instanceof AuthError) return undefined;
  const sqlState = sqlStateOf(err);
  if (sqlState !== undefined && !sqlState.startsWith('08') && !sqlState.startsWith('57P')) return undefined;
  return err instanceof Error ? err : new Error(String(err));
}

/** Errors a retry of the whole transaction can clear: serialization failure, deadlock. */
export function retryable(err: unknown): boolean {
  const code = sqlStateOf(err);
  return code === '40001' || code === '40P01';
}

/**
 * PgBouncer in transaction mode (its defaults) refuses the startup parameters a direct
 * connection sets (`unsupported startup parameter: statement_timeout`).
 */
export function refusedStartupParameter(err: unknown): boolean {
  return err instanceof Error && /unsupported startup parameter/i.test(err.message);
}

/**
 * Errors that say the server may no longer be the one to write to: it is gone, shutting down,
 * or read-only (a demoted primary, a standby). With several hosts the store looks for the writable one.
 */
export function mayHaveFailedOver(err: unknown): boolean {
  const code = sqlStateOf(err);
  if (code === '25006' || code?.startsWith('57P') || code?.startsWith('08')) return true;
  return code === undefined && connectionBroken(err) !== undefined && !/timeout/i.test((err as Error)?.message ?? '');
}

/**
 * Errors no retry can clear while the configuration stays as it is: a wrong password or user
 * (28P01, 28000), no such database (3D000), no privilege on the schema (42501).
 */
export function permanent(err: unknown): boolean {
  const code = sqlStateOf(err);
  return code === '28P01' || code === '28000' || code === '3D000' || code === '42501';
}

/**
 * The cause a metric labels a failure with: `timeout`, `connection`, `late` (ran past its
 * deadline), `sqlstate_<class>` for any other error the server sent (`sqlstate_40`: serialization
 * failure or deadlock; `sqlstate_53`: out of resources; ...).
 */
export function causeOf(err: unknown): string {
  const code = sqlStateOf(err);
  if (code === LATE) return 'late';
  if (code === '57014' || code === '55P03') return 'timeout'; // statement_timeout, lock_timeout: cancelled by the server
  if (code !== undefined && !code.startsWith('08')) return `sqlstate_${code.slice(0, 2).toLowerCase()}`;
  if (err instanceof Error && /timeout|timed out/i.test(err.message)) return 'timeout';
  return 'connection';
}
