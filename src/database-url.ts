/**
 * AUTH_DATABASE_URL as libpq reads it, the parts node-postgres does not: several hosts
 * (`postgres://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write`, as libpq, JDBC, pgx and
 * psycopg accept it), and `pgbouncer=true` (the convention Prisma users know) for a pooler in
 * transaction mode. Each host becomes a one-host URL that pg-connection-string reads as before.
 */

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** libpq's target_session_attrs values the store can serve from: it writes, so `any` still needs a writable server to be healthy. */
export const TARGET_SESSION_ATTRS = ['read-write', 'primary', 'any'] as const;
export type TargetSessionAttrs = (typeof TARGET_SESSION_ATTRS)[number];

export interface DatabaseUrl {
  /** Each host in the order given: the store uses the first that takes writes. */
  readonly hosts: readonly HostPort[];
  /** The URL for one of the hosts, without the parameters only this module reads. */
  urlFor(host: HostPort): string;
  readonly targetSessionAttrs: TargetSessionAttrs;
  /** `pgbouncer=true`: a pooler in transaction mode (no startup parameters, unnamed statements); undefined when not said. */
  readonly pooler: boolean | undefined;
}

/** Parameters read here and taken out of the URL node-postgres gets. */
const OWN = new Set(['target_session_attrs', 'pgbouncer']);

/** Reads a postgres:// or postgresql:// URL with one host or several; throws a message fit for the settings check. */
export function parseDatabaseUrl(value: string): DatabaseUrl {
  const m = /^(postgres(?:ql)?:\/\/)(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i.exec(value);
  if (!m) throw new Error('not a postgres:// or postgresql:// URL');
  const [, scheme, userinfo, hostList, path = '', query = ''] = m;
  const hosts = hostList!.split(',').map((part): HostPort => {
    const hp = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(part);
    if (!hp) throw new Error(`host "${part}" is not host or host:port`);
    const port = hp[2] === undefined ? 5432 : Number(hp[2]);
    if (port < 1 || port > 65535) throw new Error(`port ${hp[2]} is out of range`);
    return { host: hp[1]!.replace(/^\[|\]$/g, ''), port };
  });
  if (hosts.length === 0 || hosts.some((h) => h.host === '')) throw new Error('no host');
  const params = new URLSearchParams(query!.slice(1));
  const attrs = params.get('target_session_attrs') ?? 'read-write';
  if (!(TARGET_SESSION_ATTRS as readonly string[]).includes(attrs)) {
    throw new Error(`target_session_attrs=${attrs}: the store writes, so it needs read-write (the default), primary or any`);
  }
  const bouncer = params.get('pgbouncer');
  if (bouncer !== null && bouncer !== 'true' && bouncer !== 'false') throw new Error(`pgbouncer=${bouncer}: true or false`);
  const kept = [...params].filter(([k]) => !OWN.has(k));
  const rest = kept.length === 0 ? '' : `?${new URLSearchParams(kept).toString()}`;
  return {
    hosts,
    targetSessionAttrs: attrs as TargetSessionAttrs,
    pooler: bouncer === null ? undefined : bouncer === 'true',
    urlFor: (h) => `${scheme}${userinfo === undefined ? '' : `${userinfo}@`}${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}${path}${rest}`,
  };
}

/** host:port, as logs and errors name a server. */
export const hostName = (h: HostPort): string => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);

/** What a host says of itself when asked (pg_is_in_recovery(), transaction_read_only). */
export interface HostState {
  readonly standby: boolean;
  readonly readOnly: boolean;
}

/**
 * The host to write to, as libpq's target_session_attrs picks it: `current` first, then the
 * others in the URL's order; the first that answers and (unless `any`) is neither a standby nor
 * read-only. Throws naming what each host said.
 */
export async function findWritable(database: DatabaseUrl, current: HostPort, probe: (host: HostPort) => Promise<HostState>): Promise<HostPort> {
  const failures: string[] = [];
  for (const host of [current, ...database.hosts.filter((h) => h !== current)]) {
    try {
      const { standby, readOnly } = await probe(host);
      if (database.targetSessionAttrs === 'any' || (!standby && !readOnly)) return host;
      failures.push(`${hostName(host)} is ${standby ? 'a standby' : 'read-only'}`);
    } catch (err) {
      failures.push(`${hostName(host)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`no writable server among ${database.hosts.length}: ${failures.join('; ')}`);
}
