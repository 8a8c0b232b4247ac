import { CallTimeouts } from '../../src/grpc/call-timeouts';

describe('CallTimeouts', () => {
  beforeEach(() => jest.useFakeTimers({ now: Date.UTC(2030, 0, 1) }));
  afterEach(() => jest.useRealTimers());

  test('fires each unfinished operation once, in order, at its bound', () => {
    const timeouts = new CallTimeouts(1000);
    const fired: string[] = [];
    timeouts.add(() => fired.push('a'));
    jest.advanceTimersByTime(400);
    const b = timeouts.add(() => fired.push('b'));
    timeouts.add(() => fired.push('c'));
    jest.advanceTimersByTime(599);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(fired).toEqual(['a']);
    timeouts.done(b);
    jest.advanceTimersByTime(399);
    expect(fired).toEqual(['a']);
    jest.advanceTimersByTime(1);
    expect(fired).toEqual(['a', 'c']);
    jest.advanceTimersByTime(10_000);
    expect(fired).toEqual(['a', 'c']);
    expect(timeouts.pending).toBe(0);
  });

  test('finished operations never fire, whatever order they finish in', () => {
    const timeouts = new CallTimeouts(50);
    const fired: number[] = [];
    const entries = Array.from({ length: 100 }, (_, i) => timeouts.add(() => fired.push(i)));
    for (let i = 99; i >= 0; i--) if (i % 3 !== 0) timeouts.done(entries[i]!);
    expect(timeouts.pending).toBe(34);
    jest.advanceTimersByTime(50);
    expect(fired).toEqual(entries.map((_, i) => i).filter((i) => i % 3 === 0));
    expect(timeouts.pending).toBe(0);
  });

  test('starts again after going idle, and an operation that ends twice is harmless', () => {
    const timeouts = new CallTimeouts(100);
    const fired: string[] = [];
    const a = timeouts.add(() => fired.push('a'));
    timeouts.done(a);
    timeouts.done(a);
    jest.advanceTimersByTime(500);
    timeouts.add(() => fired.push('b'));
    jest.advanceTimersByTime(99);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(fired).toEqual(['b']);
  });
});
