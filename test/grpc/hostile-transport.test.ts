import { Metadata, ServerInterceptingCall, status, type ServerInterceptingCallInterface } from '@grpc/grpc-js';
import { connect as tcpConnect, type Socket } from 'node:net';
import { SecureService } from '../../gen/auth/v1/secure_pb';
import { ManualClock } from '../../src/clock';
import type { PasswordHasher } from '../../src/core/password-hasher';
import { policiesFrom } from '../../src/grpc/access-policy';
import { bearerInterceptor } from '../../src/grpc/bearer-interceptor';
import { bearer, PASSWORD, registerAndLogin, startTestServer, statusOf, type TestServer } from '../helpers/server';

/** Hostile or careless clients over real sockets: each gets a clear status, and the server keeps serving. */
describe('hostile transport', () => {
  let server: TestServer;
  let token = '';
  beforeAll(async () => {
    server = await startTestServer({ serverOptions: { 'grpc.max_connection_idle_ms': 500 } });
    token = (await registerAndLogin(server)).accessToken;
  });
  afterAll(() => server.close());
  const stillServing = async () => expect(server.secure.whoAmI({}, bearer(token))).resolves.toMatchObject({ username: 'alice' });

  test('a request over the 64 KiB message limit is RESOURCE_EXHAUSTED', async () => {
    const got = await statusOf(server.auth.validate({ accessToken: 'a'.repeat(100 * 1024) }));
    expect(got.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(got.details).toMatch(/^Received message larger than max \(\d+ vs 65536\)$/);
    await stillServing();
  });

  test('metadata over the header-list limit: the stream is refused, nothing else is hurt', async () => {
    const metadata = new Metadata();
    metadata.set('x-padding', 'p'.repeat(200 * 1024));
    expect(await statusOf(server.auth.getJwks({}, { metadata }))).toEqual({ code: status.INTERNAL, details: 'Received RST_STREAM with code 9' });
    await stillServing();
  });

  test('hundreds of concurrent streams on one connection all complete', async () => {
    const results = await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 ? server.auth.validate({ accessToken: token }) : server.secure.whoAmI({}, bearer(token)))));
    expect(results).toHaveLength(400);
    await stillServing();
  });

  test('a flood of calls: every one ends with a documented status, and normal calls still work', async () => {
    const codes = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        (i % 3 === 0 ? server.auth.login({ username: 'alice', password: 'wrong but long enough' }) : server.auth.validate({ accessToken: token })).then(
          () => status.OK,
          (err: { code: number }) => err.code,
        ),
      ),
    );
    expect(codes).toContain(status.OK);
    expect(codes.filter((c) => ![status.OK, status.UNAUTHENTICATED, status.RESOURCE_EXHAUSTED].includes(c))).toEqual([]);
    await stillServing();
  });

  test('connections that never send are closed by the idle limit while others are served', async () => {
    const [host, port] = server.address.split(':') as [string, string];
    const sockets: Socket[] = [];
    const closed = Array.from({ length: 50 }, () => {
      const socket = tcpConnect(Number(port), host);
      socket.on('error', () => {});
      socket.resume(); // read, so the server's close is seen
      sockets.push(socket);
      return new Promise<void>((resolve) => socket.on('close', () => resolve()));
    });
    await stillServing();
    await Promise.all(closed);
    await stillServing();
    sockets.forEach((s) => s.destroy());
  }, 10_000);
});

describe('calls without a deadline', () => {
  test('work that never finishes ends at AUTH_CALL_TIMEOUT (on the clock) with DEADLINE_EXCEEDED', async () => {
    let entered: () => void = () => {};
    const hashing = new Promise<void>((resolve) => (entered = resolve));
    const hang = () => {
      entered();
      return new Promise<never>(() => {});
    };
    const hanging: PasswordHasher = { hash: hang, verify: hang, verifyDummy: hang };
    const server = await startTestServer({ hasher: hanging, env: { AUTH_CALL_TIMEOUT: '1s' } });
    try {
      const result = statusOf(server.auth.login({ username: 'alice', password: PASSWORD }));
      await hashing;
      server.clock.advance(1000);
      expect(await result).toEqual({ code: status.DEADLINE_EXCEEDED, details: 'the call took too long' });
    } finally {
      await server.close();
    }
  });
});

describe('odd authorization metadata the grpc-js client will not send', () => {
  /** Runs the bearer interceptor on a fake call and returns the status it sends, or 'next'. */
  async function intercept(metadata: Metadata): Promise<{ code: number; details?: string } | 'next'> {
    const interceptor = bearerInterceptor({
      policies: policiesFrom([SecureService]),
      authenticate: async () => ({ ok: false, reason: 'malformed' }),
      timeoutMs: 1000,
      clock: new ManualClock(),
    });
    return new Promise((resolve) => {
      const inner = {
        start: (listener: { onReceiveMetadata(m: Metadata): void }) => queueMicrotask(() => listener.onReceiveMetadata(metadata)),
        sendStatus: (s: { code: number; details?: string }) => resolve({ code: s.code, details: s.details }),
        sendMetadata: () => {},
        sendMessage: () => {},
        startRead: () => {},
        getPeer: () => '127.0.0.1:1',
        getDeadline: () => Infinity,
        getHost: () => 'localhost',
      } as unknown as ServerInterceptingCallInterface;
      const call: ServerInterceptingCall = interceptor({ path: '/auth.v1.SecureService/WhoAmI' } as never, inner);
      call.start({ onReceiveMetadata: () => resolve('next'), onReceiveMessage: () => {}, onReceiveHalfClose: () => {}, onCancel: () => {} });
    });
  }

  test('two authorization values are refused', async () => {
    // Metadata.add refuses a second value for the same key, so build it as HTTP/2 headers would arrive.
    const twice = Metadata.fromHttp2Headers({ authorization: ['Bearer a.b.c', 'Bearer d.e.f'] } as never);
    expect(twice.get('authorization')).toHaveLength(2);
    expect(await intercept(twice)).toEqual({ code: status.UNAUTHENTICATED, details: 'expected exactly one authorization header' });
  });

  test('a binary authorization value is refused', async () => {
    const metadata = Metadata.fromHttp2Headers({ 'authorization-bin': Buffer.from('Bearer x').toString('base64') } as never);
    expect(await intercept(metadata)).toEqual({ code: status.UNAUTHENTICATED, details: 'missing bearer token' });
  });
});
