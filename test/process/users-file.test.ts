import { ManualClock } from '../../src/clock';
import { silentLog } from '../../src/core/events';
import { isId } from '../../src/core/ids';
import { seedFileUsers } from '../../src/users-file-seed';
import { fileUserId, parseUsersFile, UsersFileError } from '../../src/users-file';
import { memoryStore } from '../helpers/stores';

const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';
const OTHER = '$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNob3RoZXJoYXNob3RoZXJoYXNob3RoZXI';

describe('users file', () => {
  test('parses users, roles, comments and blank lines; ids are stable user ids', () => {
    const users = parseUsersFile(`# ops\n\nRoot:${HASH}:ops,admin\numa:${HASH}:\n`, 'users');
    expect(users).toEqual([
      { id: fileUserId('root'), username: 'root', passwordHash: HASH, roles: ['admin', 'ops'], digest: expect.any(String), where: 'users line 3' },
      { id: fileUserId('uma'), username: 'uma', passwordHash: HASH, roles: [], digest: expect.any(String), where: 'users line 4' },
    ]);
    expect(fileUserId('root')).toBe(fileUserId('root'));
    expect(isId(fileUserId('root'), 'usr')).toBe(true);
    // The digest follows the line's meaning, not its spelling.
    expect(parseUsersFile(`root:${HASH}:admin,ops`, 'u')[0]!.digest).toBe(users[0]!.digest);
    expect(parseUsersFile(`root:${HASH}:admin`, 'u')[0]!.digest).not.toBe(users[0]!.digest);
  });

  test.each([
    { text: 'root', want: 'users line 1: expected username:hash:roles' },
    { text: `x:${HASH}:`, want: 'users line 1: invalid username' },
    { text: `root:plain-password:admin`, want: 'users line 1: the hash must be an argon2id PHC string (grpc-auth hash-password)' },
    { text: `root:${HASH}:Admin!`, want: 'users line 1: invalid role "Admin!" (lower-case letters, digits, _ . -)' },
    { text: `root:${HASH}:\nROOT:${HASH}:`, want: 'users line 2: duplicate username' },
  ])('refuses $text', ({ text, want }) => {
    expect(() => parseUsersFile(text, 'users')).toThrow(new UsersFileError(want));
  });

  test('an error never quotes the hash', () => {
    expect(() => parseUsersFile(`root:$argon2i$secretish:x`, 'users')).toThrow(/^(?!.*secretish)/);
  });
});

describe('seeding the store from the users file', () => {
  async function setup() {
    const clock = new ManualClock();
    const store = memoryStore(clock);
    const seed = (text: string) => seedFileUsers(store, parseUsersFile(text, 'users'), silentLog);
    return { clock, store, seed };
  }

  test('creates file users; an unchanged line leaves API changes alone', async () => {
    const { store, seed } = await setup();
    await seed(`root:${HASH}:admin\numa:${HASH}:`);
    const root = (await store.findUserByUsername('root'))!;
    expect(root).toMatchObject({ id: fileUserId('root'), roles: ['admin'], origin: 'file' });
    await store.updateUser(root.id, { roles: ['admin', 'ops'] });
    await seed(`root:${HASH}:admin\numa:${HASH}:`);
    expect((await store.getUser(root.id))!.roles).toEqual(['admin', 'ops']);
  });

  test('an edited line wins; a new hash ends the user’s sessions, new roles alone do not', async () => {
    const { store, seed } = await setup();
    await seed(`root:${HASH}:admin`);
    const id = fileUserId('root');
    const session = async () => {
      const sessionId = `ses_${Buffer.alloc(16, Math.random() * 255).toString('base64url')}`;
      const u = (await store.getUser(id))!;
      await store.createSession({ userId: id, sessionId, userGeneration: u.generation, refreshHash: 'h', refreshTtlMs: 60_000, sessionMaxAgeMs: 60_000, clientAddress: 'a', amr: ['pwd'], userAgent: '' });
      return sessionId;
    };
    const s1 = await session();
    await seed(`root:${HASH}:admin,ops`);
    expect((await store.getUser(id))!.roles).toEqual(['admin', 'ops']);
    expect(await store.liveSession(id, s1)).toMatchObject({ roles: ['admin', 'ops'] });
    await seed(`root:${OTHER}:admin,ops`);
    expect((await store.getUser(id))!.passwordHash).toBe(OTHER);
    expect(await store.liveSession(id, s1)).toBeUndefined();
  });

  test('a file user no longer in the file is deleted with its sessions; API users are never touched', async () => {
    const { store, seed } = await setup();
    await store.createUser({ id: 'usr_AAAAAAAAAAAAAAAAAAAAAA', username: 'api-user', passwordHash: HASH, roles: [], disabled: false, origin: 'api' });
    await seed(`root:${HASH}:admin\numa:${HASH}:`);
    await seed(`root:${HASH}:admin`);
    expect(await store.findUserByUsername('uma')).toBeUndefined();
    expect(await store.findUserByUsername('root')).toBeDefined();
    expect(await store.findUserByUsername('api-user')).toBeDefined();
  });

  test('a name held by a user made through the API is a conflict naming the line; nothing is overwritten', async () => {
    const { store, seed } = await setup();
    await store.createUser({ id: 'usr_AAAAAAAAAAAAAAAAAAAAAA', username: 'root', passwordHash: OTHER, roles: [], disabled: false, origin: 'api' });
    await expect(seed(`# admins\nroot:${HASH}:admin`)).rejects.toThrow(new UsersFileError('users line 2: the username belongs to a user created through the API; rename one of them'));
    expect((await store.findUserByUsername('root'))!).toMatchObject({ passwordHash: OTHER, roles: [] });
  });
});
