import { create, toBinary, type DescMessage } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { SecureService } from '../../gen/auth/v1/secure_pb';
import { bearer, registerAndLogin, startTestServer, type TestServer } from '../helpers/server';

/** Every status the README's error table documents, and OK. UNKNOWN and INTERNAL are never right. */
const documented = new Set([
  status.OK,
  status.INVALID_ARGUMENT,
  status.ALREADY_EXISTS,
  status.FAILED_PRECONDITION,
  status.UNAUTHENTICATED,
  status.PERMISSION_DENIED,
  status.RESOURCE_EXHAUSTED,
]);

const methods = [...AuthService.methods, ...SecureService.methods].map((m) => ({ name: `${m.parent.typeName}/${m.name}`, method: m }));

/** Arbitrary values for every string field of a request message (all of ours are strings). */
function arbitraryRequest(schema: DescMessage) {
  const fields = Object.fromEntries(schema.fields.map((f) => [f.localName, fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.constant(''))]));
  return fc.record(fields).map((init) => Buffer.from(toBinary(schema, create(schema, init as never))));
}

describe('arbitrary requests to every RPC', () => {
  let server: TestServer;
  let token = '';
  beforeAll(async () => {
    server = await startTestServer();
    token = (await registerAndLogin(server)).accessToken;
  });
  afterAll(() => server.close());

  const call = (path: string, bytes: Buffer, withToken: boolean) =>
    new Promise<number>((resolve) => {
      server.auth.grpcClient.makeUnaryRequest(
        `/${path}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
        withToken ? bearer(token).metadata : bearer('x').metadata,
        (err) => resolve(err ? err.code : status.OK),
      );
    });

  test.each(methods)('$name: arbitrary bytes and arbitrary field values get a documented status', async ({ name, method }) => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), arbitraryRequest(method.input)), fc.boolean(), async (bytes, withToken) => {
        const code = await call(name, bytes, withToken);
        expect(documented.has(code)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  test('the service still serves normally afterwards', async () => {
    await expect(server.secure.whoAmI({}, bearer(token))).resolves.toMatchObject({ username: 'alice' });
  });
});
