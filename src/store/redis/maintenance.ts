import { RedisBase } from './base.js';

/** The maintenance switch (`grpc-auth maintenance`): one key every instance reads. */
export class RedisMaintenance extends RedisBase {
  async readMaintenance(): Promise<boolean> {
    return (await this.call(() => this.redis.get(`${this.prefix}maintenance`))) === '1';
  }

  async setMaintenance(on: boolean): Promise<void> {
    const key = `${this.prefix}maintenance`;
    await this.call(async () => {
      if (on) await this.redis.set(key, '1');
      else await this.redis.del(key);
    });
  }
}
