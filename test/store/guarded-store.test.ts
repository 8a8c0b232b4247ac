import { ManualClock } from '../../src/clock';
import { AuthError } from '../../src/errors';
import { guardStore } from '../../src/store/guarded-store';
import { memoryStore } from '../helpers/stores';
import { StoreSetupError, type Store } from '../../src/store/store';

/** A memory store whose liveSession is replaced by `op`. */
function storeWith(op: Store['liveSession']): Store {
  const store = memoryStore();
  store.liveSession = op;
  return store;
}

/** Lets promise jobs run, then moves the clock. */
async function tickOn(clock: ManualClock, ms: number): Promise<void> {
  await new Promise((r) => setImmediate(r));
  clock.advance(ms);
  await new Promise((r) => setImmediate(r));
}

describe('guardStore', () => {
  let clock: ManualClock;
  beforeEach(() => {
    clock = new ManualClock();
  });
  const tick = (ms: number) => tickOn(clock, ms);
  /** Counts each operation's end as the metrics see it: [operation, failure] in order. */
  const ends: Array<[string, string | undefined]> = [];
  const guard = (store: Store, timeoutMs: number | undefined, onError: () => void) =>
    guardStore(store, {
      timeoutMs,
      clock,
      onDone: (operation, seconds, failure) => {
        expect(seconds).toBeGreaterThanOrEqual(0);
        ends.push([operation, failure]);
        if (failure) onError();
      },
    });
  beforeEach(() => {
    ends.length = 0;
  });

  test('a store without an operation of the interface is refused when guarded, naming it', () => {
    // A store of one's own written before beginGuardedAttempt: it must not start and skip the address's check.
    const store = memoryStore();
    (store as unknown as Record<string, unknown>).beginGuardedAttempt = undefined;
    expect(() => guard(store, undefined, () => {})).toThrow(new StoreSetupError('the store has no beginGuardedAttempt: a store implements every operation of the Store interface (see the CHANGELOG\'s Upgrading notes)'));
  });

  const boom = new Error('connection reset');
  test.each([
    { name: 'untimed, rejects', timeoutMs: undefined, op: () => Promise.reject(boom) },
    { name: 'untimed, throws synchronously', timeoutMs: undefined, op: () => { throw boom; } },
    { name: 'timed, rejects', timeoutMs: 300, op: () => Promise.reject(boom) },
    { name: 'timed, throws synchronously', timeoutMs: 300, op: () => { throw boom; } },
  ])('$name: UNAVAILABLE with the cause kept, counted once', async ({ timeoutMs, op }) => {
    let errors = 0;
    const guarded = guard(storeWith(op as Store['liveSession']), timeoutMs, () => errors++);
    const failure = await guarded.liveSession('usr_1', 'ses_1').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(AuthError);
    expect(failure).toMatchObject({ code: 'unavailable', message: 'session store unavailable', cause: boom });
    expect(errors).toBe(1);
    expect(ends).toEqual([['liveSession', 'error']]);
  });

  test('an operation that never answers fails at the timeout; a late failure is not counted again', async () => {
    let errors = 0;
    let lateReject: (err: unknown) => void = () => {};
    const guarded = guard(storeWith(() => new Promise((_, reject) => (lateReject = reject))), 300, () => errors++);
    const result = guarded.liveSession('usr_1', 'ses_1').catch((err: unknown) => err);
    await tick(299);
    expect(errors).toBe(0);
    await tick(1);
    expect(await result).toMatchObject({ code: 'unavailable' });
    lateReject(boom);
    await tick(1000);
    expect(errors).toBe(1);
    expect(ends).toEqual([['liveSession', 'timeout']]);
  });

  test('answers pass through untouched, with or without a timer', async () => {
    for (const timeoutMs of [undefined, 300]) {
      let errors = 0;
      const guarded = guard(storeWith(async () => ({ id: 'usr_1', username: 'a', roles: [], revision: 1 })), timeoutMs, () => errors++);
      expect(await guarded.liveSession('usr_1', 'ses_1')).toMatchObject({ id: 'usr_1' });
      await tick(1000);
      expect(errors).toBe(0);
    }
    expect(ends).toEqual([
      ['liveSession', undefined],
      ['liveSession', undefined],
    ]);
  });
});
