/*
 * Where Redis is, as plain data: the settings' view of a connection. Kept apart from
 * redis-connection.ts so the package's public types (the store factory's, the service's) never
 * pull in ioredis's own declarations, which do not compile with `skipLibCheck: false`.
 */

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Credentials and TLS for the nodes of a Cluster or the servers behind a Sentinel. */
export interface RedisAuth {
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly tls?: boolean | undefined;
}

/** Where Redis is: one server by URL, a Cluster by some of its nodes, or a primary found through Sentinels. */
export type RedisConnection =
  | { readonly kind: 'single'; readonly url: string }
  | ({ readonly kind: 'cluster'; readonly nodes: readonly HostPort[] } & RedisAuth)
  | ({ readonly kind: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly name: string; readonly sentinelPassword?: string | undefined } & RedisAuth);

/** Where a connection points, for log lines: hosts and ports only, never credentials. */
export function redisWhere(connection: RedisConnection): string {
  const list = (nodes: readonly HostPort[]) => nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',');
  switch (connection.kind) {
    case 'single': {
      try {
        const url = new URL(connection.url);
        return `redis ${url.hostname}:${url.port || '6379'}`;
      } catch {
        return 'redis (AUTH_REDIS_URL)';
      }
    }
    case 'cluster':
      return `redis cluster ${list(connection.nodes)}`;
    case 'sentinel':
      return `redis sentinels ${list(connection.sentinels)} (primary "${connection.name}")`;
  }
}
