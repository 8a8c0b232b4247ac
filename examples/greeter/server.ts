import * as grpc from '@grpc/grpc-js';
import { serviceDefinition, serviceHandlers } from 'grpc-auth-service';
import { createAuthInterceptor, getPrincipal, type AuthInterceptorOptions } from 'grpc-auth-service/interceptor';
import { GreeterService } from './gen/greeter/v1/greeter_pb.js';

/**
 * A backend service protected by the auth service: the interceptor reads each method's policy
 * from GreeterService's own descriptors and hands the verified caller to the handlers.
 */
export async function startGreeter(verification: AuthInterceptorOptions['verification'], clock?: AuthInterceptorOptions['clock']) {
  const server = new grpc.Server({ interceptors: [createAuthInterceptor({ services: [GreeterService], verification, ...(clock ? { clock } : {}) })] });
  server.addService(
    serviceDefinition(GreeterService),
    serviceHandlers(
      GreeterService,
      {
        hello: async () => ({ message: 'hello' }),
        greet: async (_req, ctx) => ({ message: `hello, ${getPrincipal(ctx).username}` }),
        audit: async (_req, ctx) => ({ userId: getPrincipal(ctx).userId }),
        transfer: async (_req, ctx) => ({ userId: getPrincipal(ctx).userId }),
      },
      { callTimeoutMs: 5000 },
    ),
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { address: `127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}
