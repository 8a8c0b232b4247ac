import { createClient } from 'grpc-auth-service';
import { createAuthClient, type ServiceCredentials } from 'grpc-auth-service/client';
import { OrdersService } from './gen/orders/v1/orders_pb.js';

/**
 * Another backend calling the orders service as a service account: the session gets a token from
 * the auth service and a new one ahead of expiry; every call carries a fresh one.
 */
export async function ordersOfServiceAccount(authAddress: string, ordersAddress: string, credentials: ServiceCredentials): Promise<string[]> {
  const auth = createAuthClient(authAddress);
  const orders = createClient(OrdersService, ordersAddress);
  try {
    const session = await auth.serviceSession(credentials);
    const answer = await orders.listOrders({}, { credentials: session.callCredentials() });
    return answer.orders;
  } finally {
    orders.close();
    auth.close();
  }
}
