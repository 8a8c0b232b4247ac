import { create, createFileRegistry, fromBinary, getOption, type DescService } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { createClient } from '../../src/grpc/client';
import { access } from '../../gen/auth/v1/options_pb';
import { ServerReflection as V1, ServerReflectionRequestSchema as RequestV1, type ServerReflectionResponse } from '../../gen/grpc/reflection/v1/reflection_pb';
import { ServerReflection as V1Alpha } from '../../gen/grpc/reflection/v1alpha/reflection_pb';
import { serviceDefinition } from '../../src/grpc/bridge';
import { startTestServer, statusOf, type TestServer } from '../helpers/server';

type Req = Parameters<typeof create<typeof RequestV1>>[1];

/** A reflection client as grpcurl drives it: one stream, one request at a time. */
function reflect(address: string, service: DescService) {
  const definition = serviceDefinition(service).serverReflectionInfo!;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(definition.path, definition.requestSerialize, definition.responseDeserialize);
  const pending: Array<(r: ServerReflectionResponse) => void> = [];
  call.on('data', (r: ServerReflectionResponse) => pending.shift()?.(r));
  call.on('error', () => {});
  return {
    ask: (req: Req) =>
      new Promise<ServerReflectionResponse>((resolve) => {
        pending.push(resolve);
        call.write(create(service.methods[0]!.input, req as never));
      }),
    close: () => {
      call.end();
      client.close();
    },
  };
}

/** Fetches every served service's file and, by name, any import still missing: what grpcurl does. */
async function downloadDescriptors(r: ReturnType<typeof reflect>, services: string[]): Promise<FileDescriptorProto[]> {
  const files = new Map<string, FileDescriptorProto>();
  const add = (res: ServerReflectionResponse) => {
    if (res.messageResponse.case !== 'fileDescriptorResponse') throw new Error(`unexpected ${res.messageResponse.case}`);
    for (const bytes of res.messageResponse.value.fileDescriptorProto) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      files.set(file.name, file);
    }
  };
  for (const symbol of services) add(await r.ask({ messageRequest: { case: 'fileContainingSymbol', value: symbol } }));
  for (let missing = [...files.values()].flatMap((f) => f.dependency).filter((d) => !files.has(d)); missing.length > 0; ) {
    add(await r.ask({ messageRequest: { case: 'fileByFilename', value: missing[0]! } }));
    missing = [...files.values()].flatMap((f) => f.dependency).filter((d) => !files.has(d));
  }
  return [...files.values()];
}

/** Orders files so each comes after its imports, as a FileDescriptorSet must be. */
function dependenciesFirst(files: FileDescriptorProto[]): FileDescriptorProto[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const out: FileDescriptorProto[] = [];
  const visit = (f: FileDescriptorProto) => {
    if (out.includes(f)) return;
    f.dependency.forEach((d) => byName.has(d) && visit(byName.get(d)!));
    out.push(f);
  };
  files.forEach(visit);
  return out;
}

describe('server reflection', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  test.each([
    { version: 'v1', service: V1 },
    { version: 'v1alpha', service: V1Alpha },
  ])('$version: lists every service; their descriptors load into a strict registry with comments and options', async ({ service }) => {
    const r = reflect(server.address, service);
    try {
      const list = await r.ask({ messageRequest: { case: 'listServices', value: '*' } });
      expect(list.messageResponse.case).toBe('listServicesResponse');
      const names = list.messageResponse.case === 'listServicesResponse' ? list.messageResponse.value.service.map((s) => s.name) : [];
      expect(names.sort()).toEqual(
        ['auth.v1.AccountService', 'auth.v1.AdminService', 'auth.v1.AuthService', 'auth.v1.SecureService', 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'].sort(),
      );

      const files = await downloadDescriptors(r, names);
      // createFileRegistry throws on any unresolved import or type, as strict clients do.
      const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: dependenciesFirst(files) }));
      for (const name of names) expect(registry.getService(name)).toBeDefined();

      // One file per service; the messages two services share live in resources.proto.
      expect(Object.fromEntries(['AuthService', 'SecureService', 'AccountService', 'AdminService'].map((n) => [n, registry.getService(`auth.v1.${n}`)!.file.name]))).toEqual({
        AuthService: 'auth/v1/auth',
        SecureService: 'auth/v1/secure',
        AccountService: 'auth/v1/account',
        AdminService: 'auth/v1/admin',
      });
      expect(registry.getMessage('auth.v1.User')!.file.name).toBe('auth/v1/resources');
      const auth = registry.getService('auth.v1.AuthService')!;
      expect(auth.methods.map((m) => m.name)).toEqual(['Register', 'Login', 'CompleteLogin', 'RequestPasswordReset', 'ResetPassword', 'Refresh', 'Validate', 'Logout', 'GetJwks', 'IssueServiceToken', 'StartPasskeyLogin', 'FinishPasskeyLogin', 'ExchangeApiKey']);
      expect(getOption(auth.method.login!, access).public).toBe(true);
      expect(getOption(registry.getService('auth.v1.SecureService')!.method.adminPing!, access).requiredRoles).toEqual(['admin']);
      // Comments travel with the descriptors, so `grpcurl describe` shows them.
      const authFile = files.find((f) => f.name === 'auth/v1/auth.proto')!;
      expect(authFile.sourceCodeInfo?.location.some((l) => l.leadingComments.includes('Login checks a password'))).toBe(true);
    } finally {
      r.close();
    }
  });

  test.each([
    { name: 'unknown symbol', req: { messageRequest: { case: 'fileContainingSymbol', value: 'no.Such' } }, code: grpc.status.NOT_FOUND },
    { name: 'unknown file', req: { messageRequest: { case: 'fileByFilename', value: 'nope.proto' } }, code: grpc.status.NOT_FOUND },
    { name: 'empty request', req: {}, code: grpc.status.INVALID_ARGUMENT },
  ] as Array<{ name: string; req: Req; code: number }>)('$name → error_response $code', async ({ req, code }) => {
    const r = reflect(server.address, V1);
    try {
      const res = await r.ask(req);
      expect(res.messageResponse).toMatchObject({ case: 'errorResponse', value: { errorCode: code } });
    } finally {
      r.close();
    }
  });

  test('methods, extensions and extension numbers resolve', async () => {
    const r = reflect(server.address, V1);
    try {
      expect((await r.ask({ messageRequest: { case: 'fileContainingSymbol', value: 'auth.v1.AuthService.Login' } })).messageResponse.case).toBe('fileDescriptorResponse');
      const ext = await r.ask({ messageRequest: { case: 'fileContainingExtension', value: { containingType: 'google.protobuf.MethodOptions', extensionNumber: 51200 } } });
      expect(ext.messageResponse.case).toBe('fileDescriptorResponse');
      const numbers = await r.ask({ messageRequest: { case: 'allExtensionNumbersOfType', value: 'google.protobuf.MethodOptions' } });
      expect(numbers.messageResponse).toMatchObject({ case: 'allExtensionNumbersResponse', value: { extensionNumber: [51200] } });
    } finally {
      r.close();
    }
  });
});

describe('health', () => {
  test('per-service status: SERVING while up, NOT_FOUND for unknown services; shutdown ends Watch with NOT_SERVING at once', async () => {
    const server = await startTestServer();
    const health = createClient(Health, server.address);
    try {
      for (const service of ['', 'auth.v1.AuthService', 'auth.v1.SecureService', 'liveness']) {
        expect(await health.check({ service })).toMatchObject({ status: ServingStatus.SERVING });
      }
      expect(await statusOf(health.check({ service: 'no.such.Service' }))).toEqual({ code: grpc.status.NOT_FOUND, details: 'unknown service no.such.Service' });
      expect(Object.keys((await health.list({})).statuses).sort()).toEqual(['', 'auth.v1.AccountService', 'auth.v1.AdminService', 'auth.v1.AuthService', 'auth.v1.SecureService', 'liveness']);

      const seen: ServingStatus[] = [];
      let closed: Promise<void> | undefined;
      for await (const m of health.watch({ service: '' })) {
        seen.push(m.status);
        // The first status is in: shut down while the Watch is open. The grace runs on the
        // server's manual clock, which nobody moves here: only the Watch ending lets close resolve.
        if (seen.length === 1) closed = server.running.close(1000);
      }
      await closed;
      expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    } finally {
      health.close();
    }
  });
});
