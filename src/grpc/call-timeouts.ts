/** One pending bound; `onTimeout` is cleared once the work is done or the bound has fired. */
export interface PendingTimeout {
  readonly at: number;
  onTimeout: (() => void) | undefined;
  next: PendingTimeout | undefined;
}

/**
 * One time bound for many pending operations on one timer. Every operation gets the same bound,
 * so they expire in the order they started and a queue is enough: adding and finishing cost a
 * few field writes, where a `setTimeout` per call cost more than a cached Validate's whole
 * handler (bench/profile.js). Finished operations leave the head of the queue at once, so it holds
 * little more than the operations in flight. The timer is unref'd: it never keeps a process up.
 */
export class CallTimeouts {
  private head: PendingTimeout | undefined;
  private tail: PendingTimeout | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ms: number) {}

  /** Calls `onTimeout` after the bound unless `done` is called first. */
  add(onTimeout: () => void): PendingTimeout {
    const entry: PendingTimeout = { at: Date.now() + this.ms, onTimeout, next: undefined };
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
    if (!this.timer) this.schedule(this.ms);
    return entry;
  }

  done(entry: PendingTimeout): void {
    entry.onTimeout = undefined;
    this.trim();
  }

  /** Operations still waiting, for tests. */
  get pending(): number {
    let n = 0;
    for (let e = this.head; e; e = e.next) if (e.onTimeout) n++;
    return n;
  }

  private trim(): void {
    while (this.head && !this.head.onTimeout) this.head = this.head.next;
    if (!this.head) this.tail = undefined;
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(0, delay));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.head && this.head.at <= now) {
      const entry = this.head;
      this.head = entry.next;
      const onTimeout = entry.onTimeout;
      entry.onTimeout = undefined;
      onTimeout?.();
    }
    this.trim();
    if (this.head) this.schedule(this.head.at - now);
  }
}
