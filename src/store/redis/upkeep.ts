import { RedisBase } from './base.js';

/** What operators read (`grpc-auth store stats`): counts and Redis's memory, without a scan. */
export class RedisUpkeep extends RedisBase {
  async stats(): Promise<{ users: number; serviceAccounts: number; keys: number; usedMemoryBytes: number; maxMemoryBytes: number }> {
    const nodes = this.primaries();
    const [users, serviceAccounts, perNode] = await Promise.all([
      this.call(() => this.redis.zcard(this.usersKey)),
      this.call(() => this.redis.zcard(this.accountsKey)),
      Promise.all(nodes.map((node) => this.call(async () => ({ keys: await node.dbsize(), info: await node.info('memory') })))),
    ]);
    const field = (info: string, name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    return {
      users,
      serviceAccounts,
      keys: perNode.reduce((n, p) => n + p.keys, 0),
      usedMemoryBytes: perNode.reduce((n, p) => n + field(p.info, 'used_memory'), 0),
      maxMemoryBytes: perNode.reduce((n, p) => n + field(p.info, 'maxmemory'), 0),
    };
  }
}
