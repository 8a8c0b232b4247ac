import { mergeImportedFactor, type SecondFactorExport, type StoredPasskey, type UserSecrets } from '../../src/core/user-secrets';

/** The second factor a later import (a newer export) leaves on the target: table-driven. */
describe('mergeImportedFactor', () => {
  const EXPORTED_AT = 10_000;
  const factor = (confirmedAt: number, lastStep: number, recovery: string[], secret = 'JBSWY3DPEHPK3PXP'): SecondFactorExport => ({ totp: { secret, confirmedAt, lastStep }, recovery });
  const doc = (f: SecondFactorExport | undefined, extra: Partial<UserSecrets> = {}): UserSecrets => ({ ...(f ? { totp: f.totp, recovery: f.recovery } : {}), ...extra });

  test.each([
    { name: 'nothing on either side: nothing to write', existing: doc(undefined), imported: undefined, want: undefined },
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

  const passkey = (id: string, createdAt: number, counter: number, lastUsedAt?: number): StoredPasskey => ({
    id,
    publicKey: 'pk',
    counter,
    transports: ['internal'],
    backupEligible: false,
    backedUp: false,
    aaguid: '00000000-0000-0000-0000-000000000000',
    name: id,
    createdAt,
    ...(lastUsedAt !== undefined ? { lastUsedAt } : {}),
  });
  const keys = (handle: string, ...passkeys: StoredPasskey[]) => ({ webauthn: { handle, passkeys } });
  test.each([
    { name: 'new at the source: taken with its handle', existing: {}, imported: keys('H1', passkey('a', 5000, 3)), want: keys('H1', passkey('a', 5000, 3)) },
    { name: 'on both: the higher counter and the later use', existing: keys('H1', passkey('a', 5000, 9, 9000)), imported: keys('H1', passkey('a', 5000, 4, 9500)), want: keys('H1', passkey('a', 5000, 9, 9500)) },
    { name: 'deleted at the source before the export: gone, the handle stays', existing: keys('H1', passkey('a', 5000, 3)), imported: undefined, want: keys('H1') },
    { name: 'added on the target after the export: kept', existing: keys('H1', passkey('b', 12_000, 1)), imported: keys('H1', passkey('a', 5000, 3)), want: keys('H1', passkey('b', 12_000, 1), passkey('a', 5000, 3)) },
    { name: 'a handle here is never rewritten', existing: keys('H1'), imported: keys('H2', passkey('a', 5000, 3)), want: keys('H1', passkey('a', 5000, 3)) },
  ])('passkeys: $name', ({ existing, imported, want }) => {
    expect(mergeImportedFactor(existing, imported, EXPORTED_AT)).toEqual(want);
  });
});
