import type { Clock, Timer } from '../clock.js';

/** One pending bound; `onTimeout` is cleared once the work is done or the bound has fired. */
export interface PendingTimeout {
  readonly at: number;
  onTimeout: (() => void) | undefined;
  next: PendingTimeout | undefined;
}

/**
 * One time bound for many pending operations on one timer of the clock. Every operation gets the
 * same bound, so they expire in the order they started and a queue is enough: adding and
 * finishing cost a few field writes, where a timer per call cost more than a cached Validate's
 * whole handler (bench/profile.js). Finished operations leave the head of the queue at once, so
 * it holds little more than the operations in flight.
 */
export class CallTimeouts {
  private head: PendingTimeout | undefined;
  private tail: PendingTimeout | undefined;
  private timer: Timer | undefined;

  constructor(
    private readonly ms: number,
    private readonly clock: Clock,
  ) {}

  /** Calls `onTimeout` after the bound unless `done` is called first. */
  add(onTimeout: () => void): PendingTimeout {
    const entry: PendingTimeout = { at: this.clock.now() + this.ms, onTimeout, next: undefined };
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
    this.timer = this.clock.setTimer(delay, () => this.expire());
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.clock.now();
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
