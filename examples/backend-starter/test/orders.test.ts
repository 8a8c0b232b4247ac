import * as grpc from '@grpc/grpc-js';
import { AuthClientError, createClient } from 'grpc-auth-service';
import { ManualClock, startTestAuthServer, type TestAuthServer } from 'grpc-auth-service/testing';
import { ordersOfServiceAccount } from '../src/client';
import { OrdersService } from '../src/gen/orders/v1/orders_pb';
import { startOrders } from '../src/orders';

/** A call's gRPC status code (0 for OK). */
const code = (call: Promise<unknown>) => call.then(() => 0, (err: unknown) => (err instanceof AuthClientError ? err.code : -1));

const bearer = (token: string) => {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return { metadata };
};

describe('the orders service behind the auth interceptor', () => {
  const clock = new ManualClock();
  let auth: TestAuthServer;
  let orders: Awaited<ReturnType<typeof startOrders>>;
  let client: ReturnType<typeof createClient<typeof OrdersService>>;

  beforeAll(async () => {
    auth = await startTestAuthServer({ clock });
    orders = await startOrders({ auth: auth.client.auth, issuer: auth.issuer, audience: auth.audience, clock });
    client = createClient(OrdersService, orders.address);
  });
  afterAll(async () => {
    client.close();
    await orders.close();
    await auth.close();
  });

  test.each([
    { name: 'Ping is public', call: async () => code(client.ping({})), want: 0 },
    { name: 'ListOrders without a token', call: async () => code(client.listOrders({})), want: grpc.status.UNAUTHENTICATED },
    { name: 'ListOrders with a user token', call: async () => code(client.listOrders({}, bearer(await auth.tokenFor([])))), want: 0 },
    { name: 'DeleteOrder without the admin role', call: async () => code(client.deleteOrder({ id: 'o-1' }, bearer(await auth.tokenFor([])))), want: grpc.status.PERMISSION_DENIED },
    { name: 'DeleteOrder as an admin', call: async () => code(client.deleteOrder({ id: 'o-9' }, bearer(await auth.tokenFor(['admin'])))), want: 0 },
  ])('$name', async ({ call, want }) => {
    expect(await call()).toBe(want);
  });

  test('a user sees their own orders; the token stops working when it expires, the session renews', async () => {
    const alice = await auth.createUser('alice');
    const session = await auth.client.login('alice', alice.password, { clock });
    expect(await client.listOrders({}, { credentials: session.callCredentials() })).toMatchObject({ orders: ['o-1', 'o-2'], owner: 'alice' });
    const token = await session.accessToken();
    clock.advance(16 * 60_000); // past the access token's 15 minutes
    expect(await code(client.listOrders({}, bearer(token)))).toBe(grpc.status.UNAUTHENTICATED);
    // The session refreshes ahead of expiry on the same clock: calls go on.
    expect(await client.listOrders({}, { credentials: session.callCredentials() })).toMatchObject({ owner: 'alice' });
    await session.logout();
  });

  test('another backend calls it as a service account', async () => {
    const root = await auth.tokenFor(['admin']);
    const created = await auth.client.admin.createServiceAccount({ name: 'reports', roles: [] }, bearer(root));
    expect(await ordersOfServiceAccount(auth.address, orders.address, { clientId: created.clientId, clientSecret: created.clientSecret })).toEqual([]);
  });
});
