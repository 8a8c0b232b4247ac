import { Metadata, status } from '@grpc/grpc-js';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GreeterService } from '../../examples/greeter/gen/greeter/v1/greeter_pb';
import { startGreeter } from '../../examples/greeter/server';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { createClient } from '../../src/grpc/client';
import { otelConfigured } from '../../src/tracing';
import { startOtlpReceiver } from '../helpers/otlp';
import { startProcess, runUntilExit } from '../helpers/process';
import { runPython } from '../helpers/python-grpc';
import { describeNeeding } from '../helpers/requires';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { writeUsersFile } from '../helpers/users';
import { eventually } from '../helpers/wait';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';
const traceparent = () => {
  const metadata = new Metadata();
  metadata.set('traceparent', `00-${TRACE_ID}-${PARENT_SPAN}-01`);
  return metadata;
};

describe('tracing, with an in-memory exporter', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let server: TestServer;
  let untraced: TestServer;

  beforeAll(async () => {
    // As the SDK of main.ts does: the global context manager (AsyncLocalStorage) and W3C propagator.
    provider.register();
    server = await startTestServer({ tracer: provider.getTracer('test'), env: { AUTH_USERS_FILE: await writeUsersFile({ root: ['admin'] }) } });
    untraced = await startTestServer();
    await server.auth.register({ username: 'alice', password: PASSWORD });
    await untraced.auth.register({ username: 'alice', password: PASSWORD });
  });
  afterAll(async () => {
    await server.close();
    await untraced.close();
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });
  beforeEach(() => exporter.reset());

  const spans = () => exporter.getFinishedSpans();
  const serverSpan = (name: string) => spans().find((s) => s.name === name && s.kind === SpanKind.SERVER)!;
  const childrenOf = (parent: ReadableSpan) => spans().filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId);

  test('a SERVER span per RPC, child of the traceparent it was called with, with the rpc.* attributes and the user', async () => {
    const login = await server.auth.login({ username: 'alice', password: PASSWORD }, { metadata: traceparent() });
    const span = serverSpan('auth.v1.AuthService/Login');
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanContext?.spanId).toBe(PARENT_SPAN);
    expect(span.attributes).toMatchObject({ 'rpc.system': 'grpc', 'rpc.service': 'auth.v1.AuthService', 'rpc.method': 'Login', 'rpc.grpc.status_code': status.OK, 'client.address': '127.0.0.1' });
    const userId = JSON.parse(Buffer.from(login.accessToken.split('.')[1]!, 'base64url').toString()).sub as string;
    expect(span.attributes['enduser.id']).toBe(userId);
    expect(span.events.map((e) => e.name)).toEqual(expect.arrayContaining(['login_succeeded', 'session_created']));
  });

  test('store operations and the password hash are child spans of the call', async () => {
    await server.auth.login({ username: 'alice', password: PASSWORD }, { metadata: traceparent() });
    const children = childrenOf(serverSpan('auth.v1.AuthService/Login'));
    const names = children.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['store.findUserByUsername', 'store.createSession', 'password.verify']));
    for (const child of children) expect(child.spanContext().traceId).toBe(TRACE_ID);
    expect(children.find((s) => s.name === 'store.createSession')!.attributes).toMatchObject({ 'db.system': 'memory' });
  });

  test.each([
    ['a refused login: UNAUTHENTICATED, not an error span', { username: 'alice', password: 'not the password!' }, status.UNAUTHENTICATED, 0],
    ['a bad request: INVALID_ARGUMENT, not an error span', { username: '', password: '' }, status.INVALID_ARGUMENT, 0],
  ])('%s', async (_name, request, code, spanStatus) => {
    expect(await statusOf(server.auth.login(request))).toMatchObject({ code });
    const span = serverSpan('auth.v1.AuthService/Login');
    expect(span.attributes['rpc.grpc.status_code']).toBe(code);
    expect(span.status.code).toBe(spanStatus);
    // Nobody proved who they are: no enduser.id, though login_failed names the account tried.
    expect(span.attributes['enduser.id']).toBeUndefined();
  });

  test("an admin's call names the admin as the caller and the target in the event", async () => {
    const admin = await server.auth.login({ username: 'root', password: PASSWORD });
    const bob = await server.admin.createUser({ username: 'bob-traced', password: PASSWORD, roles: [] }, bearer(admin.accessToken));
    exporter.reset();
    await server.admin.setRoles({ userId: bob.user!.userId, roles: ['reader'] }, bearer(admin.accessToken));
    const span = serverSpan('auth.v1.AdminService/SetRoles');
    const adminId = JSON.parse(Buffer.from(admin.accessToken.split('.')[1]!, 'base64url').toString()).sub as string;
    expect(span.attributes['enduser.id']).toBe(adminId);
    expect(span.events.find((e) => e.name === 'roles_changed')?.attributes).toEqual({ userId: bob.user!.userId, actorId: adminId });
  });

  test('the protected path: the interceptor names the caller, its token check is traced too', async () => {
    const { accessToken } = await server.auth.login({ username: 'alice', password: PASSWORD });
    exporter.reset();
    await server.secure.whoAmI({}, bearer(accessToken));
    const span = serverSpan('auth.v1.SecureService/WhoAmI');
    expect(span.attributes['enduser.id']).toMatch(/^usr_/);
    expect(childrenOf(span).map((s) => s.name)).toContain('store.liveSession');
  });

  test('no token, password or hash in any span', async () => {
    const t = await server.auth.login({ username: 'alice', password: PASSWORD }, { metadata: traceparent() });
    await server.auth.refresh({ refreshToken: t.refreshToken });
    await server.auth.validate({ accessToken: t.accessToken });
    const text = JSON.stringify(spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })));
    for (const secret of [PASSWORD, t.accessToken, t.refreshToken, t.accessToken.split('.')[2]!, '$argon2']) expect(text).not.toContain(secret);
  });

  test('the client propagates the active context: a call made inside a span is its child on the server', async () => {
    const tracer = provider.getTracer('caller');
    const caller = await tracer.startActiveSpan('caller', async (span) => {
      await server.auth.getJwks({});
      span.end();
      return span;
    });
    const span = serverSpan('auth.v1.AuthService/GetJwks');
    expect(span.spanContext().traceId).toBe(caller.spanContext().traceId);
    expect(span.parentSpanContext?.spanId).toBe(caller.spanContext().spanId);
  });

  test("the package's interceptor carries the caller's trace into its remote Validate", async () => {
    const auth = createClient(AuthService, server.address);
    const greeter = await startGreeter({ mode: 'remote', auth });
    const client = createClient(GreeterService, greeter.address);
    try {
      const { accessToken } = await server.auth.login({ username: 'alice', password: PASSWORD });
      exporter.reset();
      const metadata = traceparent();
      metadata.set('authorization', `Bearer ${accessToken}`);
      await client.greet({}, { metadata });
      const validate = serverSpan('auth.v1.AuthService/Validate');
      expect(validate.spanContext().traceId).toBe(TRACE_ID);
    } finally {
      client.close();
      auth.close();
      await greeter.close();
    }
  });

  test('off unless configured: a server given no tracer makes no span', async () => {
    await untraced.auth.login({ username: 'alice', password: PASSWORD }, { metadata: traceparent() });
    expect(spans().filter((s) => s.kind === SpanKind.SERVER)).toEqual([]);
  });
});

describe('tracing configuration', () => {
  test.each([
    [{}, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, true],
    [{ OTEL_TRACES_EXPORTER: 'otlp' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }, false],
  ])('%j → %s', (env, on) => {
    expect(otelConfigured(env)).toBe(on);
  });
});

// A C-core caller (grpcio) sends traceparent as plain metadata: Register, then Login.
const PYTHON_TRACED_CALLS = `
import grpc, json, sys
addr, traceparent = sys.argv[1:3]
def field(n, s):
    b = s.encode(); return bytes([n << 3 | 2, len(b)]) + b
ch = grpc.insecure_channel(addr)
for method in ('Register', 'Login'):
    call = ch.unary_unary('/auth.v1.AuthService/' + method, request_serializer=lambda r: r, response_deserializer=lambda b: b)
    try:
        call(field(1, 'bob') + field(2, 'correct horse battery staple'), metadata=(('traceparent', traceparent),), timeout=5)
        print(json.dumps({'method': method, 'code': 'OK'}))
    except grpc.RpcError as e:
        print(json.dumps({'method': method, 'code': e.code().name}))
`;

describeNeeding(['python3-grpcio'], 'end to end: the service process exports what a C-core caller started', () => {
  test.each([
    { protocol: 'http/protobuf (the default)', env: {} as Record<string, string>, receiver: 'http/protobuf' as const, contentType: 'application/x-protobuf' },
    { protocol: 'http/protobuf', env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' } as Record<string, string>, receiver: 'http/protobuf' as const, contentType: 'application/x-protobuf' },
    { protocol: 'http/json', env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' } as Record<string, string>, receiver: 'http/json' as const, contentType: 'application/json' },
    { protocol: 'grpc (traces-only setting wins)', env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' } as Record<string, string>, receiver: 'grpc' as const, contentType: 'application/grpc' },
  ])('OTLP $protocol: Register and Login continue the caller’s trace', async ({ env, receiver: kind, contentType }) => {
    const receiver = await startOtlpReceiver(kind);
    const running = await startProcess({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_SERVICE_NAME: 'auth-under-test', OTEL_BSP_SCHEDULE_DELAY: '100', ...env });
    try {
      expect(running.lines.find((l) => l.event === 'tracing_started')).toMatchObject({ protocol: kind });
      const { lines } = await runPython(PYTHON_TRACED_CALLS, [String(running.started.address), `00-${TRACE_ID}-${PARENT_SPAN}-01`]);
      expect(lines).toEqual([
        { method: 'Register', code: 'OK' },
        { method: 'Login', code: 'OK' },
      ]);
      const rpc = (name: string) => receiver.spans.find((span) => span.name === `auth.v1.AuthService/${name}`) ?? false;
      const [register, login] = [await eventually(() => rpc('Register')), await eventually(() => rpc('Login'))];
      for (const span of [register, login]) expect(span).toEqual({ name: span.name, traceId: TRACE_ID, parentSpanId: PARENT_SPAN, serviceName: 'auth-under-test' });
      await eventually(() => ['password.verify', 'store.createSession'].every((n) => receiver.spans.some((span) => span.name === n && span.traceId === TRACE_ID)));
      expect([...receiver.contentTypes]).toEqual([contentType]);
    } finally {
      running.child.kill('SIGTERM');
      expect(await running.exit).toBe(0);
      await receiver.close();
    }
  });

  test('an OTLP protocol it does not know stops start-up, naming the setting', async () => {
    const { code, lines } = await runUntilExit({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift' });
    expect(code).toBe(2);
    expect(lines.at(-1)).toMatchObject({ event: 'startup_failed', msg: 'OTEL_EXPORTER_OTLP_PROTOCOL must be one of http/protobuf, http/json, grpc (got "thrift")' });
  });
});

describe('end to end: shutdown with tracing on', () => {
  test('a collector that does not answer cannot hold the exit: SIGTERM still ends the service', async () => {
    // A receiver that accepts and never answers.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const running = await startProcess({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_BSP_SCHEDULE_DELAY: '100' });
    const auth = createClient(AuthService, String(running.started.address));
    try {
      await auth.register({ username: 'carol', password: PASSWORD });
    } finally {
      auth.close();
    }
    const t0 = Date.now();
    running.child.kill('SIGTERM');
    expect(await running.exit).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    silent.closeAllConnections();
    silent.close();
  }, 30_000);
});
