import * as grpc from '@grpc/grpc-js';
import { serviceDefinition, serviceHandlers, type Clock } from 'grpc-auth-service';
import type { AuthServiceClient } from 'grpc-auth-service/client';
import { createAuthInterceptor, getPrincipal } from 'grpc-auth-service/interceptor';
import { OrdersService } from './gen/orders/v1/orders_pb.js';

export interface OrdersOptions {
  /** The auth service's AuthService client: its keys (GetJwks) verify tokens here. */
  readonly auth: Pick<AuthServiceClient, 'getJwks'>;
  /** The issuer and audience the auth service signs for (its AUTH_ISSUER and AUTH_AUDIENCE). */
  readonly issuer: string;
  readonly audience: string;
  /** Where to listen; port 0 picks a free one. */
  readonly address?: string;
  /** The clock tokens' expiry is checked on: the test kit's ManualClock in tests. */
  readonly clock?: Clock;
}

/** The orders backend: its methods behind the package's interceptor, with the policy its proto declares. */
export async function startOrders(options: OrdersOptions): Promise<{ address: string; close(): Promise<void> }> {
  const orders = new Map<string, string[]>([['alice', ['o-1', 'o-2']]]);
  const server = new grpc.Server({
    interceptors: [
      createAuthInterceptor({
        services: [OrdersService],
        verification: { mode: 'local', fetchJwks: () => options.auth.getJwks({}).then((r) => r.jwksJson), issuer: options.issuer, audience: options.audience },
        ...(options.clock ? { clock: options.clock } : {}),
      }),
    ],
  });
  server.addService(
    serviceDefinition(OrdersService),
    serviceHandlers(
      OrdersService,
      {
        ping: async () => ({ message: 'pong' }),
        listOrders: async (_request, ctx) => {
          const caller = getPrincipal(ctx);
          return { orders: orders.get(caller.username) ?? [], owner: caller.username };
        },
        deleteOrder: async (request) => {
          for (const [owner, list] of orders) orders.set(owner, list.filter((id) => id !== request.id));
          return {};
        },
      },
      { callTimeoutMs: 5000 },
    ),
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.address ?? '127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = (options.address ?? '127.0.0.1:0').replace(/:\d+$/, '');
  return {
    address: `${host}:${port}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
