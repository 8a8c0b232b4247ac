import { create, createFileRegistry, type DescService } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FieldDescriptorProto_Label, FieldDescriptorProto_Type } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '../../src/grpc/bridge';
import { serviceHandlers, type ServiceImpl } from '../../src/grpc/handlers';
import { runPython } from '../helpers/python-grpc';
import { describeNeeding } from '../helpers/requires';
import { startTestServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/wait';

/**
 * Client-streaming and bidi methods through the shared handler adapter, driven the ways real
 * clients drive them: a request then an immediate half-close (grpcio's `stub(iter([req]))`,
 * grpc_cli), several then a half-close, a half-close with no request, a cancel midway.
 */

// A two-method service built from a descriptor at run time: nothing generated for tests.
const file = create(FileDescriptorProtoSchema, {
  name: 'streamtest/v1/notes.proto',
  package: 'streamtest.v1',
  syntax: 'proto3',
  messageType: [{ name: 'Note', field: [{ name: 'text', number: 1, type: FieldDescriptorProto_Type.STRING, label: FieldDescriptorProto_Label.OPTIONAL, jsonName: 'text' }] }],
  service: [
    {
      name: 'Notes',
      method: [
        { name: 'Collect', inputType: '.streamtest.v1.Note', outputType: '.streamtest.v1.Note', clientStreaming: true },
        { name: 'Echo', inputType: '.streamtest.v1.Note', outputType: '.streamtest.v1.Note', clientStreaming: true, serverStreaming: true },
      ],
    },
  ],
});
const Notes = createFileRegistry(file, () => undefined).getService('streamtest.v1.Notes') as DescService & {
  method: { collect: { methodKind: 'client_streaming'; input: never; output: never }; echo: { methodKind: 'bidi_streaming'; input: never; output: never } };
};

/** How each handler's reading of its requests ended: 'ended' (half-close) or 'threw' (cancel). */
const outcomes: string[] = [];
async function readAll(requests: AsyncIterable<{ text: string }>, method: string): Promise<string[]> {
  const texts: string[] = [];
  try {
    for await (const r of requests) texts.push(r.text);
  } catch (err) {
    outcomes.push(`${method} threw`);
    throw err;
  }
  outcomes.push(`${method} ended`);
  return texts;
}
const impl = {
  async collect(requests: AsyncIterable<{ text: string }>) {
    const texts = await readAll(requests, 'collect');
    return { text: `${texts.length}:${texts.join(',')}` };
  },
  async *echo(requests: AsyncIterable<{ text: string }>) {
    try {
      for await (const r of requests) yield { text: `echo ${r.text}` };
    } catch (err) {
      outcomes.push('echo threw');
      throw err;
    }
    outcomes.push('echo ended');
    // Written after the requests ended: what a consumed-then-destroyed stream never sent.
    yield { text: 'done' };
  },
} as unknown as ServiceImpl<typeof Notes>;

let server: grpc.Server;
let address: string;
let client: grpc.Client;
const def = serviceDefinition(Notes);

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(def, serviceHandlers(Notes, impl, { callTimeoutMs: 5000 }));
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  address = `127.0.0.1:${port}`;
  client = new grpc.Client(address, grpc.credentials.createInsecure());
});
afterAll(() => {
  client.close();
  server.forceShutdown();
});

const note = (text: string) => create(Notes.methods[0]!.input, { text } as never);
const deadline = () => new Date(Date.now() + 3000);

function collect(texts: readonly string[]): Promise<{ code: number; text?: string }> {
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(def.collect!.path, def.collect!.requestSerialize, def.collect!.responseDeserialize, new grpc.Metadata(), { deadline: deadline() }, (err, res) =>
      resolve(err ? { code: err.code } : { code: grpc.status.OK, text: (res as { text: string }).text }),
    );
    for (const t of texts) call.write(note(t));
    call.end();
  });
}

function echo(texts: readonly string[]): Promise<{ code: number; texts: string[] }> {
  return new Promise((resolve) => {
    const got: string[] = [];
    const call = client.makeBidiStreamRequest(def.echo!.path, def.echo!.requestSerialize, def.echo!.responseDeserialize, new grpc.Metadata(), { deadline: deadline() });
    call.on('data', (m: { text: string }) => got.push(m.text));
    call.on('error', () => {});
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, texts: got }));
    for (const t of texts) call.write(note(t));
    call.end();
  });
}

describe('client streaming and bidi over a real socket (grpc-js client)', () => {
  const cases = [
    { name: 'one request, half-closed at once', input: ['a'], collect: '1:a', echo: ['echo a', 'done'] },
    { name: 'several requests, then half-close', input: ['a', 'b', 'c'], collect: '3:a,b,c', echo: ['echo a', 'echo b', 'echo c', 'done'] },
    { name: 'half-close with no request', input: [], collect: '0:', echo: ['done'] },
  ];
  test.each(cases)('client streaming: $name → the answer and OK', async ({ input, collect: want }) => {
    expect(await collect(input)).toEqual({ code: grpc.status.OK, text: want });
  });
  test.each(cases)('bidi: $name → every answer, then OK', async ({ input, echo: want }) => {
    expect(await echo(input)).toEqual({ code: grpc.status.OK, texts: want });
  });

  test('a cancel midway: the client sees CANCELLED and each handler’s reading of its requests ends', async () => {
    outcomes.length = 0;
    const bidi = client.makeBidiStreamRequest(def.echo!.path, def.echo!.requestSerialize, def.echo!.responseDeserialize, new grpc.Metadata(), {});
    const bidiStatus = new Promise<number>((resolve) => bidi.on('status', (s: grpc.StatusObject) => resolve(s.code)));
    const first = new Promise((resolve) => bidi.once('data', resolve));
    bidi.on('error', () => {});
    bidi.write(note('x'));
    expect(await first).toMatchObject({ text: 'echo x' });
    bidi.cancel();
    expect(await bidiStatus).toBe(grpc.status.CANCELLED);
    const csStatus = new Promise<number>((resolve) => {
      const cs = client.makeClientStreamRequest(def.collect!.path, def.collect!.requestSerialize, def.collect!.responseDeserialize, new grpc.Metadata(), {}, (err) => resolve(err?.code ?? grpc.status.OK));
      cs.write(note('y'));
      setTimeout(() => cs.cancel(), 50);
    });
    expect(await csStatus).toBe(grpc.status.CANCELLED);
    // grpc-js's cancel sends END_STREAM then RST_STREAM, so the server may read either ending.
    await eventually(() => outcomes.length === 2);
    expect(outcomes.map((o) => o.split(' ')[0])).toEqual(['echo', 'collect']);
  });
});

// grpcio's C-core client: the request iterator ends right after its requests (a half-close at once).
const PYTHON_NOTES = `
import grpc, json, sys
addr = sys.argv[1]
def enc(t):
    b = t.encode(); return b'\\x0a' + bytes([len(b)]) + b if b else b''
def dec(b):
    return b[2:].decode()
ch = grpc.insecure_channel(addr)
collect = ch.stream_unary('/streamtest.v1.Notes/Collect', request_serializer=enc, response_deserializer=dec)
echo = ch.stream_stream('/streamtest.v1.Notes/Echo', request_serializer=enc, response_deserializer=dec)
for texts in (['a'], ['a', 'b', 'c'], []):
    try:
        print(json.dumps({'method': 'collect', 'n': len(texts), 'answer': collect(iter(texts), timeout=3), 'code': 'OK'}))
    except grpc.RpcError as e:
        print(json.dumps({'method': 'collect', 'n': len(texts), 'code': e.code().name}))
    try:
        print(json.dumps({'method': 'echo', 'n': len(texts), 'answer': list(echo(iter(texts), timeout=3)), 'code': 'OK'}))
    except grpc.RpcError as e:
        print(json.dumps({'method': 'echo', 'n': len(texts), 'code': e.code().name}))
`;

// Server reflection is a bidi method: grpcio asks list_services (field 7) and half-closes at once.
const PYTHON_REFLECTION = `
import grpc, json, sys
ch = grpc.insecure_channel(sys.argv[1])
for path in ('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo'):
    info = ch.stream_stream(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        answers = list(info(iter([b'\\x3a\\x00']), timeout=3))
        print(json.dumps({'path': path, 'code': 'OK', 'answers': len(answers), 'services': [s for s in ['auth.v1.AuthService', 'grpc.health.v1.Health'] if s.encode() in answers[0]]}))
    except grpc.RpcError as e:
        print(json.dumps({'path': path, 'code': e.code().name}))
`;

describeNeeding(['python3-grpcio'], 'client streaming and bidi from a C-core client (Python grpcio)', () => {
  test('requests then an immediate half-close: every answer and OK, for each shape', async () => {
    const { lines, stderr } = await runPython(PYTHON_NOTES, [address]);
    expect(stderr).toBe('');
    expect(lines).toEqual([
      { method: 'collect', n: 1, answer: '1:a', code: 'OK' },
      { method: 'echo', n: 1, answer: ['echo a', 'done'], code: 'OK' },
      { method: 'collect', n: 3, answer: '3:a,b,c', code: 'OK' },
      { method: 'echo', n: 3, answer: ['echo a', 'echo b', 'echo c', 'done'], code: 'OK' },
      { method: 'collect', n: 0, answer: '0:', code: 'OK' },
      { method: 'echo', n: 0, answer: ['done'], code: 'OK' },
    ]);
  });

  describe('the service’s reflection', () => {
    let auth: TestServer;
    beforeAll(async () => {
      auth = await startTestServer();
    });
    afterAll(() => auth.close());

    test('v1 and v1alpha answer list_services and end OK', async () => {
      const { lines } = await runPython(PYTHON_REFLECTION, [auth.address]);
      expect(lines).toEqual([
        { path: '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', code: 'OK', answers: 1, services: ['auth.v1.AuthService', 'grpc.health.v1.Health'] },
        { path: '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo', code: 'OK', answers: 1, services: ['auth.v1.AuthService', 'grpc.health.v1.Health'] },
      ]);
    });
  });
});
