import { MemoryBase } from './base.js';

/** The maintenance switch (`grpc-auth maintenance`): one flag, this process's only. */
export class MemoryMaintenance extends MemoryBase {
  async readMaintenance(): Promise<boolean> {
    return this.maintenance;
  }

  async setMaintenance(on: boolean): Promise<void> {
    this.maintenance = on;
  }
}
