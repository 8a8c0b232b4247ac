import { fileUserId, parseUsersFile, UsersFileError } from '../src/users-file';

const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';

describe('users file', () => {
  test('parses users, roles, comments and blank lines; ids are stable', () => {
    const users = parseUsersFile(`# ops\n\nRoot:${HASH}:admin,ops\numa:${HASH}:\n`, 'users', 0);
    expect(users).toEqual([
      { id: fileUserId('root'), username: 'root', passwordHash: HASH, roles: ['admin', 'ops'], createdAt: 0 },
      { id: fileUserId('uma'), username: 'uma', passwordHash: HASH, roles: [], createdAt: 0 },
    ]);
    expect(fileUserId('root')).toBe(fileUserId('root'));
    expect(fileUserId('root')).toMatch(/^usr_[A-Za-z0-9_-]{22}$/);
  });

  test.each([
    { text: 'root', want: 'users line 1: expected username:hash:roles' },
    { text: `x:${HASH}:`, want: 'users line 1: invalid username' },
    { text: `root:plain-password:admin`, want: 'users line 1: the hash must be an argon2id PHC string (npm run hash-password)' },
    { text: `root:${HASH}:Admin!`, want: 'users line 1: invalid role "Admin!" (lower-case letters, digits, _ . -)' },
    { text: `root:${HASH}:\nROOT:${HASH}:`, want: 'users line 2: duplicate username' },
  ])('refuses $text', ({ text, want }) => {
    expect(() => parseUsersFile(text, 'users', 0)).toThrow(new UsersFileError(want));
  });

  test('an error never quotes the hash', () => {
    expect(() => parseUsersFile(`root:$argon2i$secretish:x`, 'users', 0)).toThrow(/^(?!.*secretish)/);
  });
});
