import { createAuthClient } from 'grpc-auth-service/client';
import { startOrders } from './orders.js';

// ORDERS_ADDRESS: where to listen; AUTH_SERVICE_ADDRESS: the auth service; ISSUER and AUDIENCE: what it signs for.
const env = (name: string, fallback?: string) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};

async function main() {
  const auth = createAuthClient(env('AUTH_SERVICE_ADDRESS', '127.0.0.1:50051'));
  const orders = await startOrders({ auth: auth.auth, issuer: env('ISSUER', 'urn:grpc-auth:dev'), audience: env('AUDIENCE', 'urn:grpc-auth:services'), address: env('ORDERS_ADDRESS', '127.0.0.1:50061') });
  console.log(`orders service listening on ${orders.address}`);
  const stop = () => void orders.close().then(() => auth.close());
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
