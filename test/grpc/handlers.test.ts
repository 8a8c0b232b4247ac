import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { SecureService, WhoAmIResponseSchema } from '../../gen/auth/v1/secure_pb';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { ManualClock } from '../../src/clock';
import { AuthError } from '../../src/errors';
import { RepeatedAnswers } from '../../src/grpc/answer-cache';
import { EncodedMessage, serviceDefinition } from '../../src/grpc/bridge';
import { createClient } from '../../src/grpc/client';
import { serviceHandlers, type ServiceImpl } from '../../src/grpc/handlers';
import { loggingInterceptor } from '../../src/grpc/logging-interceptor';
import { systemRandom } from '../../src/random';
import { statusOf } from '../helpers/server';
import { eventually, nextTurn } from '../helpers/wait';

describe('serviceHandlers: typed from the descriptors', () => {
  test('a missing RPC is a compile error and, if forced, a start-up error', () => {
    // @ts-expect-error adminPing is missing: the descriptor demands every RPC.
    const partial: ServiceImpl<typeof SecureService> = { whoAmI: async () => ({}) };
    expect(() => serviceHandlers(SecureService, partial)).toThrow('auth.v1.SecureService.AdminPing has no implementation');
  });

  test('a wrong response type is a compile error', () => {
    const impl: ServiceImpl<typeof SecureService> = {
      // @ts-expect-error userId must be a string.
      whoAmI: async () => ({ userId: 42 }),
      adminPing: async () => ({ message: 'pong' }),
      stepUpPing: async () => ({ message: 'pong' }),
    };
    expect(Object.keys(serviceHandlers(SecureService, impl))).toEqual(['whoAmI', 'adminPing', 'stepUpPing']);
  });

  test('a server-streaming method must be an async iterable, not a promise', () => {
    const impl: ServiceImpl<typeof Health> = {
      check: async () => ({ status: ServingStatus.SERVING }),
      // @ts-expect-error Watch streams: it returns an async iterable of responses.
      watch: async () => ({ status: ServingStatus.SERVING }),
      list: async () => ({}),
    };
    expect(Object.keys(serviceHandlers(Health, impl))).toEqual(['check', 'watch', 'list']);
  });

  test('definitions carry the gRPC paths and Buffer serializers; an encoded message is sent as its bytes', () => {
    const def = serviceDefinition(SecureService);
    expect(def.whoAmI!.path).toBe('/auth.v1.SecureService/WhoAmI');
    const bytes = def.adminPing!.responseSerialize({ $typeName: 'auth.v1.AdminPingResponse', message: 'pong', userId: 'u' });
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(def.adminPing!.responseDeserialize(bytes)).toMatchObject({ message: 'pong', userId: 'u' });
    const encoded = new EncodedMessage(Buffer.from(bytes));
    expect(def.adminPing!.responseSerialize(encoded)).toBe(encoded.bytes);
  });
});

describe('RepeatedAnswers', () => {
  test('built fresh the first time, then encoded once and sent as the same bytes for a key that comes back', () => {
    let built = 0;
    const cache = new RepeatedAnswers(WhoAmIResponseSchema, (key: { id: string }) => {
      built++;
      return { userId: key.id, roles: ['r'] };
    });
    const a = { id: 'a' };
    expect(cache.answer(a)).toEqual({ userId: 'a', roles: ['r'] });
    const second = cache.answer(a);
    expect(second).toBeInstanceOf(EncodedMessage);
    expect(cache.answer(a)).toBe(second);
    expect(cache.answer({ id: 'a' })).not.toBe(second); // another key object, however alike
    expect(built).toBe(3);
    const def = serviceDefinition(SecureService).whoAmI!;
    expect(def.responseDeserialize((second as EncodedMessage).bytes)).toEqual(create(WhoAmIResponseSchema, { userId: 'a', roles: ['r'] }));
  });
});

/** A bare grpc-js server with one service, for the handler adapters. */
async function serve<S extends Parameters<typeof serviceDefinition>[0]>(service: S, impl: ServiceImpl<S>, clock = new ManualClock(), interceptors: grpc.ServerInterceptor[] = []) {
  const server = new grpc.Server({ interceptors });
  server.addService(serviceDefinition(service), serviceHandlers(service, impl, { callTimeoutMs: 1000, clock }));
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const client = createClient(service, `127.0.0.1:${port}`);
  return {
    client,
    close: async () => {
      client.close();
      server.forceShutdown();
    },
  };
}

describe('handlers over a real socket', () => {
  test('unary: the call bound runs on the clock; the handler sees its signal aborted', async () => {
    const clock = new ManualClock();
    let signal: AbortSignal | undefined;
    const { client, close } = await serve(
      SecureService,
      {
        whoAmI: (_req, ctx) => {
          signal = ctx.signal;
          return new Promise(() => {});
        },
        adminPing: async () => {
          throw new AuthError('permission_denied', 'requires role admin');
        },
        stepUpPing: async () => ({ message: 'pong' }),
      },
      clock,
    );
    try {
      expect(await statusOf(client.adminPing({}))).toEqual({ code: grpc.status.PERMISSION_DENIED, details: 'requires role admin' });
      const pending = statusOf(client.whoAmI({}));
      while (signal === undefined) await nextTurn();
      expect(signal.aborted).toBe(false);
      clock.advance(1000);
      expect(await pending).toEqual({ code: grpc.status.DEADLINE_EXCEEDED, details: 'the call took too long' });
      expect(signal.aborted).toBe(true);
    } finally {
      await close();
    }
  });

  test("with the logging interceptor: a client's cancel aborts the call's signal and logs CANCELLED; an answered call's signal is never aborted", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    let pending: AbortSignal | undefined;
    let answered: AbortSignal | undefined;
    const { client, close } = await serve(
      SecureService,
      {
        whoAmI: (_req, ctx) => {
          pending = ctx.signal;
          return new Promise(() => {});
        },
        adminPing: async (_req, ctx) => {
          answered = ctx.signal;
          return { message: 'pong' };
        },
        stepUpPing: async () => ({ message: 'pong' }),
      },
      new ManualClock(),
      [loggingInterceptor(log, systemRandom)],
    );
    try {
      expect(await client.adminPing({})).toMatchObject({ message: 'pong' });
      const cancel = new AbortController();
      const cancelled = statusOf(client.whoAmI({}, { signal: cancel.signal }));
      while (pending === undefined) await nextTurn();
      cancel.abort();
      expect((await cancelled).code).toBe(grpc.status.CANCELLED);
      await eventually(() => pending!.aborted);
      expect((pending!.reason as Error).message).toBe('cancelled');
      await eventually(() => lines.some((l) => l.msg === 'call' && l.code === 'CANCELLED'));
      // grpc-js reports every call's stream closing to the interceptor, also after its status
      // went: by now the answered call's has long closed, and its signal stays as it was.
      expect(answered!.aborted).toBe(false);
      expect(lines.filter((l) => l.msg === 'call').map((l) => l.code)).toEqual(['OK', 'CANCELLED']);
    } finally {
      await close();
    }
  });

  test('server streaming: messages in order, then OK; a throw mid-stream ends it with its status', async () => {
    let fail = false;
    const { client, close } = await serve(Health, {
      check: async () => ({ status: ServingStatus.SERVING }),
      async *watch(req) {
        yield { status: ServingStatus.SERVING };
        yield { status: ServingStatus.NOT_SERVING };
        if (fail) throw new AuthError('not_found', `unknown service ${req.service}`);
      },
      list: async () => ({}),
    });
    try {
      const seen: ServingStatus[] = [];
      for await (const m of client.watch({ service: 'x' })) seen.push(m.status);
      expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
      fail = true;
      const again: ServingStatus[] = [];
      const err = await (async () => {
        for await (const m of client.watch({ service: 'x' })) again.push(m.status);
      })().catch((e: { code: number; details: string }) => e);
      expect(again).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
      expect(err).toMatchObject({ code: grpc.status.NOT_FOUND, details: 'unknown service x' });
    } finally {
      await close();
    }
  });

  test('server streaming: a client that leaves aborts the handler’s signal', async () => {
    let aborted: () => void = () => {};
    const gone = new Promise<void>((resolve) => (aborted = resolve));
    const { client, close } = await serve(Health, {
      check: async () => ({ status: ServingStatus.SERVING }),
      async *watch(_req, ctx) {
        ctx.signal.addEventListener('abort', () => aborted());
        yield { status: ServingStatus.SERVING };
        await new Promise(() => {});
      },
      list: async () => ({}),
    });
    try {
      const controller = new AbortController();
      for await (const m of client.watch({ service: '' }, { signal: controller.signal })) {
        expect(m.status).toBe(ServingStatus.SERVING);
        controller.abort();
      }
      await gone;
    } finally {
      await close();
    }
  });
});
