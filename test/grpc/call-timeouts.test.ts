import { ManualClock } from '../../src/clock';
import { CallTimeouts } from '../../src/grpc/call-timeouts';

describe('CallTimeouts', () => {
  let clock: ManualClock;
  beforeEach(() => {
    clock = new ManualClock();
  });

  test('fires each unfinished operation once, in order, at its bound', () => {
    const timeouts = new CallTimeouts(1000, clock);
    const fired: string[] = [];
    timeouts.add(() => fired.push('a'));
    clock.advance(400);
    const b = timeouts.add(() => fired.push('b'));
    timeouts.add(() => fired.push('c'));
    clock.advance(599);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual(['a']);
    timeouts.done(b);
    clock.advance(399);
    expect(fired).toEqual(['a']);
    clock.advance(1);
    expect(fired).toEqual(['a', 'c']);
    clock.advance(10_000);
    expect(fired).toEqual(['a', 'c']);
    expect(timeouts.pending).toBe(0);
  });

  test('finished operations never fire, whatever order they finish in', () => {
    const timeouts = new CallTimeouts(50, clock);
    const fired: number[] = [];
    const entries = Array.from({ length: 100 }, (_, i) => timeouts.add(() => fired.push(i)));
    for (let i = 99; i >= 0; i--) if (i % 3 !== 0) timeouts.done(entries[i]!);
    expect(timeouts.pending).toBe(34);
    clock.advance(50);
    expect(fired).toEqual(entries.map((_, i) => i).filter((i) => i % 3 === 0));
    expect(timeouts.pending).toBe(0);
  });

  test('starts again after going idle, and an operation that ends twice is harmless', () => {
    const timeouts = new CallTimeouts(100, clock);
    const fired: string[] = [];
    const a = timeouts.add(() => fired.push('a'));
    timeouts.done(a);
    timeouts.done(a);
    clock.advance(500);
    timeouts.add(() => fired.push('b'));
    clock.advance(99);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual(['b']);
  });
});
