import { status } from '@grpc/grpc-js';
import { connect as h2connect } from 'node:http2';
import { connect as tcpConnect, type Socket } from 'node:net';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { createKeySet, generateEcKey, hmacSigningKey, jwkThumbprint } from '../../src/core/keys';
import { Argon2Hasher } from '../../src/core/password-hasher';
import { createClient } from '../../src/grpc/client';
import { HealthService } from '../../src/grpc/health';
import { MemoryStore } from '../../src/store/memory/memory-store';
import { heapAfterGc } from '../helpers/heap';
import { rawRequest } from '../helpers/raw-frames';
import { PASSWORD, registerAndLogin, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { eventually, nextTurn } from '../helpers/wait';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '../../src/grpc/bridge';
import { serviceHandlers } from '../../src/grpc/handlers';

const LONG_NAME = (i: number) => `${String(i).padStart(6, '0')}${'x'.repeat(16_000)}`;

describe('health: no state a client can grow', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  test('2,000 cancelled Watch calls with unique 16,000-character names leave nothing behind', async () => {
    // A connection per batch: Node's HTTP/2 ends a session whose client resets streams too fast
    // (its rapid-reset defence), which is not what this test is about.
    const batch = async (from: number) => {
      const health = createClient(Health, server.address);
      try {
        await Promise.all(
          Array.from({ length: 50 }, async (_, i) => {
            const controller = new AbortController();
            for await (const m of health.watch({ service: LONG_NAME(from + i) }, { signal: controller.signal })) {
              expect(m.status).toBe(ServingStatus.SERVICE_UNKNOWN);
              controller.abort();
            }
          }),
        );
      } finally {
        health.close();
      }
    };
    await batch(0); // warm up the path
    await eventually(() => server.app.server.health.watching === 0);
    const before = heapAfterGc();
    for (let b = 0; b < 40; b++) await batch(1000 + b * 50);
    await eventually(() => server.app.server.health.watching === 0);
    // 2,000 names of 16 KB were 32 MB of names; a leak of them would show many times over.
    expect(heapAfterGc() - before).toBeLessThan(8_000_000);
  });

  test('Check of an unknown name does not echo a long name back', async () => {
    const health = createClient(Health, server.address);
    try {
      expect(await statusOf(health.check({ service: 'x'.repeat(60_000) }))).toEqual({ code: status.NOT_FOUND, details: 'unknown service' });
      expect(await statusOf(health.check({ service: 'no.such.Service' }))).toEqual({ code: status.NOT_FOUND, details: 'unknown service no.such.Service' });
    } finally {
      health.close();
    }
  });

  test('Watch streams beyond the cap are refused while the others stay open', async () => {
    const healthService = new HealthService(['', 'a'], ServingStatus.SERVING, 5);
    const bare = new grpc.Server();
    bare.addService(serviceDefinition(Health), serviceHandlers(Health, healthService.implementation));
    const port = await new Promise<number>((resolve, reject) => bare.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const client = createClient(Health, `127.0.0.1:${port}`);
    const controllers = Array.from({ length: 5 }, () => new AbortController());
    try {
      const open = controllers.map(async (c, i) => {
        for await (const _ of client.watch({ service: i % 2 ? 'a' : 'unknown' }, { signal: c.signal })) void _;
      });
      await eventually(() => healthService.watching === 5);
      const refused = await (async () => {
        for await (const _ of client.watch({ service: 'a' })) void _;
      })().catch((e: { code: number; details: string }) => e);
      expect(refused).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: 'too many health watchers; retry shortly' });
      for (const c of controllers) c.abort();
      await Promise.all(open);
      await eventually(() => healthService.watching === 0);
    } finally {
      client.close();
      bare.forceShutdown();
    }
  });
});

describe('failed logins leave bounded state', () => {
  test('a flood of logins with huge unknown names from one address: throttled after 20, no entry per name', async () => {
    const server = await startTestServer();
    try {
      // U+FDFA is 3 bytes and NFKC-expands 18×: 85 of them fit the byte cap and become 1,530 characters.
      const name = (i: number) => `${i}${'\ufdfa'.repeat(80)}`;
      const codes = new Map<number, number>();
      for (let i = 0; i < 2000; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, (_, k) => statusOf(server.auth.login({ username: name(i + k), password: 'a wrong password, long' })).then((s) => s.code)));
        for (const c of batch) codes.set(c, (codes.get(c) ?? 0) + 1);
      }
      expect(codes.get(status.RESOURCE_EXHAUSTED)).toBeGreaterThan(1900);
      const store = server.app.backend.store as MemoryStore;
      // The address's count, and an entry per name that was really tried: the 20 failures the
      // address is allowed, plus the attempts that were in flight together (50 here, bounded by
      // the hashing queue in general). Never one per call.
      expect(store.size().attempts).toBeLessThanOrEqual(1 + 20 + 50);
    } finally {
      await server.close();
    }
  });
});

describe('Register: its own limits and its own share of hashing', () => {
  test('per client address: the 21st registration in an hour is refused with the wait', async () => {
    const server = await startTestServer({ env: { AUTH_REGISTER_PER_ADDRESS: '20', AUTH_REGISTER_PER_MINUTE: '1000' } });
    try {
      for (let i = 0; i < 20; i++) await server.auth.register({ username: `user${i}`, password: PASSWORD });
      const refused = (await server.auth.register({ username: 'user20', password: PASSWORD }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(refused.details).toMatch(/^too many registrations; retry in \d+ s$/);
      expect(Number(refused.metadata.get('retry-after')[0])).toBeGreaterThan(0);
      server.clock.advance(3_600_000);
      await expect(server.auth.register({ username: 'user20', password: PASSWORD })).resolves.toBeDefined();
    } finally {
      await server.close();
    }
  });

  test('overall: the ceiling holds whatever the address', async () => {
    const server = await startTestServer({ env: { AUTH_REGISTER_PER_ADDRESS: '1000', AUTH_REGISTER_PER_MINUTE: '5' } });
    try {
      for (let i = 0; i < 5; i++) await server.auth.register({ username: `user${i}`, password: PASSWORD });
      expect((await statusOf(server.auth.register({ username: 'user5', password: PASSWORD }))).code).toBe(status.RESOURCE_EXHAUSTED);
      expect(server.logs.entries).toContainEqual(expect.objectContaining({ event: 'register_throttled', scope: 'overall' }));
    } finally {
      await server.close();
    }
  });

  test('new-password hashing cannot take the threads of logins: a check runs while every new hash waits', async () => {
    const hasher = new Argon2Hasher({ memoryCost: 4096, timeCost: 2, parallelism: 1, concurrency: 2, maxQueue: 16, newHashConcurrency: 1, newHashQueue: 16 });
    const stored = await hasher.hash(PASSWORD);
    let pending = 0;
    const flood = Array.from({ length: 30 }, () => {
      pending++;
      return hasher.hash(PASSWORD).then(
        () => pending--,
        (err: { code: string }) => {
          pending--;
          return err.code;
        },
      );
    });
    expect(await hasher.verify(stored, PASSWORD)).toBe(true);
    expect(pending).toBeGreaterThan(5); // the check did not queue behind them
    const outcomes = await Promise.all(flood);
    expect(outcomes.filter((o) => o === 'overloaded')).toHaveLength(30 - 1 - 16);
  });
});

describe('half-open requests and connections', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { AUTH_REQUEST_TIMEOUT: '5s', AUTH_MAX_CONNECTIONS_PER_ADDRESS: '16' } });
  });
  afterAll(() => server.close());

  test('128 streams that send headers and never a message are ended at the request timeout, on the clock', async () => {
    const session = h2connect(`http://${server.address}`);
    // The server ends each stream without the client's half-close; the session may report it.
    session.on('error', () => {});
    try {
      const ended = Array.from({ length: 128 }, () => {
        const stream = session.request({ ':method': 'POST', ':path': '/auth.v1.AuthService/GetJwks', 'content-type': 'application/grpc', te: 'trailers' });
        stream.on('error', () => {});
        // The client never half-closes, so the stream's end is the status the server sends.
        return new Promise<string | undefined>((resolve) => {
          const take = (h: Record<string, unknown>) => h['grpc-status'] !== undefined && resolve(String(h['grpc-status']));
          stream.on('response', take);
          stream.on('trailers', take);
          stream.on('close', () => resolve(undefined));
          stream.resume();
        });
      });
      await eventually(() => server.app.server.awaitingRequests() === 128);
      server.clock.advance(4999);
      await nextTurn();
      expect(server.app.server.awaitingRequests()).toBe(128);
      server.clock.advance(1);
      expect(new Set(await Promise.all(ended))).toEqual(new Set([String(status.DEADLINE_EXCEEDED)]));
    } finally {
      session.destroy();
    }
  });

  test('ten streams answered at the request timeout are then closed (RST_STREAM NO_ERROR), not left half-open', async () => {
    const session = h2connect(`http://${server.address}`);
    session.on('error', () => {});
    try {
      const streams = Array.from({ length: 10 }, () => {
        // Headers only: no message, and the client never ends its side.
        const stream = session.request({ ':method': 'POST', ':path': '/auth.v1.AuthService/Validate', 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
        stream.on('error', () => {});
        stream.resume();
        let grpcStatus: string | undefined;
        const take = (h: Record<string, unknown>) => {
          if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
        };
        stream.on('response', take);
        stream.on('trailers', take);
        return { stream, closed: new Promise<{ status: string | undefined; rst: number }>((resolve) => stream.on('close', () => resolve({ status: grpcStatus, rst: stream.rstCode ?? -1 }))) };
      });
      await eventually(() => server.app.server.awaitingRequests() === 10);
      server.clock.advance(5000);
      // Each stream gets its status and is then closed by the server, well within a second.
      const outcomes = await Promise.race([
        Promise.all(streams.map((s) => s.closed)),
        new Promise<'still open'>((resolve) => setTimeout(() => resolve('still open'), 3000).unref()),
      ]);
      expect(outcomes).toEqual(Array.from({ length: 10 }, () => ({ status: String(status.DEADLINE_EXCEEDED), rst: 0 })));
      expect(streams.every((s) => s.stream.closed)).toBe(true);
    } finally {
      session.destroy();
    }
  });

  test('connections past the cap per client address are closed at once; the others are served', async () => {
    const sockets: Socket[] = [];
    const closed: Array<Promise<void>> = [];
    await eventually(() => server.app.server.connections().total === 0);
    try {
      for (let i = 0; i < 40; i++) {
        const socket = tcpConnect(Number(server.address.split(':')[1]), '127.0.0.1');
        socket.on('error', () => {});
        closed.push(new Promise((resolve) => socket.on('close', () => resolve())));
        sockets.push(socket);
      }
      await eventually(() => server.app.server.connections().total === 16);
      // 24 were closed on arrival; 16 stay, and a new client cannot get in until they go.
      await Promise.all(closed.slice(16));
      expect(await statusOf(server.auth.getJwks({}, { deadline: 2000 }))).toMatchObject({ code: status.UNAVAILABLE });
      for (const s of sockets) s.destroy();
      await eventually(() => server.app.server.connections().total === 0);
      // (A channel of its own: grpc-js shares subchannels, and the shared one is in back-off after being turned away.)
      const fresh = createClient(AuthService, server.address, undefined, { 'grpc.use_local_subchannel_pool': 1 });
      await expect(fresh.getJwks({})).resolves.toBeDefined();
      fresh.close();
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});

describe('duplicate authorization headers, over a real socket', () => {
  let server: TestServer;
  let token = '';
  beforeAll(async () => {
    server = await startTestServer();
    token = (await registerAndLogin(server)).accessToken;
  });
  afterAll(() => server.close());

  const headers = (...authorization: string[]) =>
    [[':method', 'POST'], [':scheme', 'http'], [':path', '/auth.v1.SecureService/WhoAmI'], [':authority', 'localhost'], ['content-type', 'application/grpc'], ['te', 'trailers'], ...authorization.map((v) => ['authorization', v] as const)] as ReadonlyArray<readonly [string, string]>;

  test.each([
    { name: 'one valid header is served (the control)', values: () => [`Bearer ${token}`], served: true },
    { name: 'valid first, garbage second', values: () => [`Bearer ${token}`, 'Bearer garbage'], served: false },
    { name: 'garbage first, valid second', values: () => ['Bearer garbage', `Bearer ${token}`], served: false },
    { name: 'the same valid header twice', values: () => [`Bearer ${token}`, `Bearer ${token}`], served: false },
  ])('$name', async ({ values, served }) => {
    const before = server.logs.entries.length;
    const outcome = await rawRequest(server.address, headers(...values()));
    expect(outcome).toEqual({ gotMessage: served, ended: true });
    await eventually(() => server.logs.entries.slice(before).some((e) => e.msg === 'call'));
    const line = server.logs.entries.slice(before).find((e) => e.msg === 'call');
    expect(line).toMatchObject({ method: '/auth.v1.SecureService/WhoAmI', code: served ? 'OK' : 'UNAUTHENTICATED' });
  });
});

describe('signing keys say nothing of their secrets', () => {
  test('the HS256 kid is a fixed name, not a thumbprint of the secret', () => {
    const secret = Buffer.from('a shared secret of at least 32 bytes!');
    const key = hmacSigningKey(secret);
    expect(key.kid).toBe('hs256');
    expect(key.kid).not.toBe(jwkThumbprint({ kty: 'oct', k: secret.toString('base64url') }));
    expect(createKeySet([key]).jwksJson).toBe('{"keys":[]}');
    expect(createKeySet([generateEcKey()]).signing.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

