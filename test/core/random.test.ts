import { pooledRandom } from '../../src/random';

describe('pooledRandom', () => {
  test.each([1, 12, 16, 32, 64])('hands out %i fresh bytes per call, never the same twice', (size) => {
    const random = pooledRandom(256);
    const seen = new Set<string>();
    // Enough draws to refill the pool many times over.
    for (let i = 0; i < 2000; i++) {
      const bytes = random.bytes(size);
      expect(bytes).toHaveLength(size);
      if (size >= 12) {
        const hex = bytes.toString('hex');
        expect(seen.has(hex)).toBe(false);
        seen.add(hex);
      }
    }
  });

  test('a returned buffer is a copy: writing to it or drawing more does not change it', () => {
    const random = pooledRandom(64);
    const a = random.bytes(16);
    const copy = Buffer.from(a);
    random.bytes(16).fill(0);
    for (let i = 0; i < 10; i++) random.bytes(16);
    expect(a.equals(copy)).toBe(true);
  });

  test('bytes are spread: every byte value turns up over 64 KiB', () => {
    const random = pooledRandom();
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 2048; i++) for (const b of random.bytes(32)) counts[b]!++;
    expect(Math.min(...counts)).toBeGreaterThan(128); // 256 expected per value
  });

  test('requests larger than a quarter of the pool bypass it', () => {
    const random = pooledRandom(64);
    expect(random.bytes(17)).toHaveLength(17);
    expect(random.bytes(1000)).toHaveLength(1000);
  });
});
