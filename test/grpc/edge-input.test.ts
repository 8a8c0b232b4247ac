import { create, toBinary, type DescMessage, type DescMethod } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { AccountService } from '../../gen/auth/v1/account_pb';
import { AdminService } from '../../gen/auth/v1/admin_pb';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { SecureService } from '../../gen/auth/v1/secure_pb';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { describeEachStore } from '../helpers/stores';

/** A page token of the right shape whose position holds a NUL (what a forged token can carry). */
const NUL_PAGE_TOKEN = Buffer.from(JSON.stringify({ v: 1, after: 'a\u0000b', prefix: '' })).toString('base64url');

/** Values no id, name, prefix or token of this service can hold: each must be refused at the edge. */
const HOSTILE = ['a\u0000b', '\u0000', `usr_${'A'.repeat(20)}\u0000A`, 'é'.repeat(3000), "x' OR '1'='1", '\u202e\u0007\u001b[2J', NUL_PAGE_TOKEN];

/** What an edge refusal (or a harmless success) may be; a store error (UNAVAILABLE, INTERNAL) never is. */
const EDGE = new Set([
  status.OK,
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.ALREADY_EXISTS,
  status.FAILED_PRECONDITION,
  status.UNAUTHENTICATED,
  status.PERMISSION_DENIED,
  status.RESOURCE_EXHAUSTED,
]);

const METHODS: readonly DescMethod[] = [AuthService, SecureService, AccountService, AdminService].flatMap((s) => s.methods);

/** Requests with one string field (or list of strings) set to `value`, the others empty. */
function requests(schema: DescMessage, value: string): Array<{ field: string; bytes: Buffer }> {
  return schema.fields
    .filter((f) => (f.fieldKind === 'scalar' || f.fieldKind === 'list') && f.scalar === 9 /* string */)
    .map((f) => ({ field: f.name, bytes: Buffer.from(toBinary(schema, create(schema, { [f.localName]: f.fieldKind === 'list' ? [value] : value } as never))) }));
}

describeEachStore('ids, names, prefixes and page tokens are checked at the edge', (env) => {
  let server: TestServer;
  let admin: ReturnType<typeof bearer>;
  beforeAll(async () => {
    server = await startTestServer({ env: env() });
    const { userId } = await server.auth.register({ username: 'root', password: PASSWORD });
    await server.app.store.updateUser(userId, { roles: ['admin'] });
    admin = bearer((await server.auth.login({ username: 'root', password: PASSWORD })).accessToken);
  });
  afterAll(() => server.close());

  test.each([
    { name: 'ListUsers, a NUL in the prefix', call: () => server.admin.listUsers({ usernamePrefix: 'a\u0000' }, admin), want: { code: status.INVALID_ARGUMENT, details: 'username_prefix must not contain control characters' } },
    { name: 'ListServiceAccounts, a NUL in the prefix', call: () => server.admin.listServiceAccounts({ namePrefix: '\u0000' }, admin), want: { code: status.INVALID_ARGUMENT, details: 'name_prefix must not contain control characters' } },
    { name: 'ListUsers, a page token whose position holds a NUL', call: () => server.admin.listUsers({ pageToken: NUL_PAGE_TOKEN }, admin), want: { code: status.INVALID_ARGUMENT, details: 'page_token is not valid' } },
    { name: 'ListServiceAccounts, the same token', call: () => server.admin.listServiceAccounts({ pageToken: NUL_PAGE_TOKEN }, admin), want: { code: status.INVALID_ARGUMENT, details: 'page_token is not valid' } },
    { name: 'SetRoles, a NUL in user_id', call: () => server.admin.setRoles({ userId: 'usr_\u0000', roles: [] }, admin), want: { code: status.NOT_FOUND, details: 'user not found' } },
    { name: 'DisableUser, a NUL in user_id', call: () => server.admin.disableUser({ userId: 'a\u0000b' }, admin), want: { code: status.NOT_FOUND, details: 'user not found' } },
    { name: 'EnableUser, a NUL in user_id', call: () => server.admin.enableUser({ userId: 'a\u0000b' }, admin), want: { code: status.NOT_FOUND, details: 'user not found' } },
    { name: 'RevokeUserSessions, a NUL in user_id', call: () => server.admin.revokeUserSessions({ userId: '\u0000' }, admin), want: { code: status.NOT_FOUND, details: 'user not found' } },
    { name: 'Login, a NUL in the username', call: () => server.auth.login({ username: 'ro\u0000ot', password: PASSWORD }), want: { code: status.UNAUTHENTICATED, details: 'invalid username or password' } },
  ])('$name', async ({ call, want }) => {
    expect(await statusOf(call())).toEqual(want);
  });

  test(`every string field of every RPC (${METHODS.length} RPCs), given ${HOSTILE.length} hostile values, is answered without a store error`, async () => {
    const unexpected: string[] = [];
    for (const method of METHODS) {
      for (const value of HOSTILE) {
        for (const { field, bytes } of requests(method.input, value)) {
          const code = await new Promise<number>((resolve) =>
            server.auth.grpcClient.makeUnaryRequest(`/${method.parent.typeName}/${method.name}`, (b: Buffer) => b, (b: Buffer) => b, bytes, admin.metadata, (err) => resolve(err ? err.code : status.OK)),
          );
          if (!EDGE.has(code)) unexpected.push(`${method.name}.${field} = ${JSON.stringify(value.slice(0, 24))}: ${status[code]}`);
        }
      }
    }
    expect(unexpected).toEqual([]);
    // And the service is still whole: the admin's session and the store answer.
    expect((await server.admin.listUsers({}, admin)).users.map((u) => u.username)).toContain('root');
  }, 60_000);
});
