import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ManualClock } from '../../src/clock';

describe('ManualClock', () => {
  test('fires due timers in order, each at its own time; a cancelled timer never fires', () => {
    const clock = new ManualClock(0);
    const fired: Array<[string, number]> = [];
    clock.setTimer(20, () => fired.push(['b', clock.now()]));
    clock.setTimer(10, () => fired.push(['a', clock.now()]));
    clock.setTimer(15, () => fired.push(['never', clock.now()])).cancel();
    clock.setTimer(30, () => fired.push(['later', clock.now()]));
    clock.advance(25);
    expect(fired).toEqual([['a', 10], ['b', 20]]);
    expect(clock.now()).toBe(25);
    expect(clock.pendingTimers).toBe(1);
  });

  test('a clock that is never moved lets go of cancelled timers (the test kit runs long on one): what they held is collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const clock = new ManualClock(0);
    const refs: Array<WeakRef<object>> = [];
    for (let i = 0; i < 1000; i++) {
      const held = { request: `a request held by timer ${i}` };
      refs.push(new WeakRef(held));
      clock.setTimer(1000, () => void held).cancel();
    }
    await new Promise((r) => setImmediate(r));
    gc();
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
    expect(clock.pendingTimers).toBe(0);
  });
});
