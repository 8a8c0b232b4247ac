/**
 * The one polling helper of the tests: for what runs outside the test's clock (another process,
 * a real redis-server, the network). Retries `check` until it resolves (and, when it returns a
 * boolean, until that is true), then returns its value; throws the last failure after `timeoutMs`.
 */
export async function eventually<T>(check: () => T | Promise<T>, { timeoutMs = 5000, intervalMs = 20 } = {}): Promise<Exclude<T, false>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      const value = await check();
      if (value !== false) return value as Exclude<T, false>;
      failure = new Error('the condition stayed false');
    } catch (err) {
      failure = err;
    }
    if (Date.now() > end) throw failure;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Lets pending I/O callbacks and promise jobs run (one turn of the event loop). */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Awaits `promise` while moving `clock` forward `stepMs` at a time, for work that waits on
 * timers of that clock (back-off between retries, say).
 */
export async function whileMoving<T>(clock: { advance(ms: number): void }, promise: Promise<T>, stepMs = 1000, maxSteps = 1000): Promise<T> {
  let settled = false;
  const watched = promise.finally(() => {
    settled = true;
  });
  watched.catch(() => {});
  for (let i = 0; i < maxSteps && !settled; i++) {
    await nextTurn();
    if (!settled) clock.advance(stepMs);
  }
  return watched;
}
