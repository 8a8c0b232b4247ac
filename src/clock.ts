/**
 * Time, injected: domain code and every timer or deadline of the service read this interface,
 * never `Date.now` or `setTimeout`, so tests move time instead of waiting (jose's `currentDate`,
 * and the reason fosite's refresh tests have to sleep).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `callback` once, `delayMs` from now. Timers never keep a process alive. */
  setTimer(delayMs: number, callback: () => void): Timer;
}

export interface Timer {
  /** Stops the timer if it has not fired; harmless afterwards. */
  cancel(): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(delayMs, callback) {
    const handle = setTimeout(callback, Math.max(0, delayMs));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Runs `callback` every `intervalMs` on `clock` until the returned timer is cancelled. */
export function repeat(clock: Clock, intervalMs: number, callback: () => void): Timer {
  let current: Timer;
  let cancelled = false;
  const tick = () => {
    if (cancelled) return;
    current = clock.setTimer(intervalMs, tick);
    callback();
  };
  current = clock.setTimer(intervalMs, tick);
  return {
    cancel: () => {
      cancelled = true;
      current.cancel();
    },
  };
}

interface ManualTimer {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
}

/**
 * A clock that stands still until moved, for tests and the test kit. `advance` fires every timer
 * that falls due, in order, each with `now()` at its own due time. A cancelled timer is dropped at
 * once, so a clock that is never moved holds only the timers still waiting (a long test that
 * never advances time does not grow).
 */
export class ManualClock implements Clock {
  private readonly timers = new Set<ManualTimer>();
  private seq = 0;

  constructor(private current = Date.UTC(2030, 0, 1)) {}

  now(): number {
    return this.current;
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    const timer: ManualTimer = { at: this.current + Math.max(0, delayMs), seq: this.seq++, callback };
    this.timers.add(timer);
    return { cancel: () => void this.timers.delete(timer) };
  }

  /** Moves time forward by `ms`, firing the timers that fall due on the way. */
  advance(ms: number): void {
    this.moveTo(this.current + ms);
  }

  /** Sets the time; moving forward fires timers as `advance` does. */
  set(ms: number): void {
    if (ms > this.current) this.moveTo(ms);
    else this.current = ms;
  }

  /** Timers waiting to fire, for tests. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  private moveTo(target: number): void {
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.timers) if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (!next) break;
      this.timers.delete(next);
      this.current = Math.max(this.current, next.at);
      next.callback();
    }
    this.current = target;
  }
}
