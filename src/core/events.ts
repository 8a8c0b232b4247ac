/**
 * The little the core needs of a logger: structured security events. The gRPC layer passes a
 * per-call pino child logger (request id, method), which satisfies this shape.
 */
export interface EventLog {
  info(fields: Record<string, unknown>, event: string): void;
  warn(fields: Record<string, unknown>, event: string): void;
  error(fields: Record<string, unknown>, event: string): void;
}

/** Per-call context a flow may use: where to log and who is calling (for audit fields). */
export interface FlowContext {
  readonly log: EventLog;
  /** The caller's network address without the port, when known: a key for login throttling. */
  readonly clientAddress?: string | undefined;
  /** The caller's user agent (sanitised, bounded), when known: shown by ListSessions. */
  readonly userAgent?: string | undefined;
  /** The authenticated caller, on protected RPCs: the actor of audit events. */
  readonly principal?:
    | { readonly userId: string; readonly sessionId: string; readonly roles: readonly string[]; readonly subjectType?: 'user' | 'service_account'; readonly amr?: readonly string[] }
    | undefined;
}

export const silentLog: EventLog = { info: () => {}, warn: () => {}, error: () => {} };
