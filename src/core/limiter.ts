import { AuthError } from '../errors.js';

/**
 * Runs at most `concurrency` tasks at once and queues at most `maxQueue` more; past that a task
 * is refused at once with `overloaded` rather than waiting without bound. Used to keep password
 * hashing within its threads (and their memory), so a login flood waits its turn or is refused.
 */
export class ConcurrencyLimiter {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxQueue: number,
    private readonly refusal = 'too many logins in progress; retry shortly',
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.queue.length >= this.maxQueue) throw new AuthError('overloaded', this.refusal);
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.queue.shift();
      // The slot passes straight to the next task, so `running` only drops when none waits.
      if (next) next();
      else this.running--;
    }
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }
}
