import { mergeImportedFactor, type SecondFactorExport, type UserSecrets } from '../../src/core/user-secrets';

/** The second factor a later import (a newer export) leaves on the target: table-driven. */
describe('mergeImportedFactor', () => {
  const EXPORTED_AT = 10_000;
  const factor = (confirmedAt: number, lastStep: number, recovery: string[], secret = 'JBSWY3DPEHPK3PXP'): SecondFactorExport => ({ totp: { secret, confirmedAt, lastStep }, recovery });
  const doc = (f: SecondFactorExport | undefined, extra: Partial<UserSecrets> = {}): UserSecrets => ({ ...(f ? { totp: f.totp, recovery: f.recovery } : {}), ...extra });

  test.each([
    { name: 'nothing on either side: nothing', existing: doc(undefined), imported: undefined, want: {} },
    { name: 'new at the source: taken', existing: doc(undefined), imported: factor(5000, 7, ['a', 'b']), want: doc(factor(5000, 7, ['a', 'b'])) },
    { name: 'the same factor: the later step, and only codes unspent on both sides', existing: doc(factor(5000, 9, ['a', 'b', 'c'])), imported: factor(5000, 7, ['a', 'c', 'd']), want: doc(factor(5000, 9, ['a', 'c'])) },
    { name: 'the same factor, nothing new: unchanged', existing: doc(factor(5000, 7, ['a'])), imported: factor(5000, 7, ['a']), want: doc(factor(5000, 7, ['a'])) },
    { name: 'replaced at the source (confirmed later): the new one', existing: doc(factor(5000, 9, ['a'])), imported: factor(8000, 3, ['x'], 'KRSXG5CTMVRXEZLU'), want: doc(factor(8000, 3, ['x'], 'KRSXG5CTMVRXEZLU')) },
    { name: 'replaced on the target after the export: kept', existing: doc(factor(12_000, 1, ['y'], 'KRSXG5CTMVRXEZLU')), imported: factor(5000, 9, ['a']), want: doc(factor(12_000, 1, ['y'], 'KRSXG5CTMVRXEZLU')) },
    { name: 'turned off at the source before the export: gone', existing: doc(factor(5000, 9, ['a'])), imported: undefined, want: undefined },
    { name: 'turned off at the source, a pending login kept', existing: doc(factor(5000, 9, ['a']), { logins: [{ hash: 'h', expiresAt: 99_999, generation: 0 }] }), imported: undefined, want: { logins: [{ hash: 'h', expiresAt: 99_999, generation: 0 }] } },
    { name: 'turned on at the target after the export: kept', existing: doc(factor(11_000, 2, ['z'])), imported: undefined, want: doc(factor(11_000, 2, ['z'])) },
  ])('$name', ({ existing, imported, want }) => {
    expect(mergeImportedFactor(existing, imported, EXPORTED_AT)).toEqual(want);
  });
});
