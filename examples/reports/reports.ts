import * as grpc from '@grpc/grpc-js';
// In your own service these come from the package: 'grpc-auth-service', '…/client'.
import { createClient } from 'grpc-auth-service';
import { createAuthClient, type AuthClientError, type ServiceCredentials, type TokenSessionOptions } from 'grpc-auth-service/client';
import { GreeterService } from '../greeter/gen/greeter/v1/greeter_pb.js';

/**
 * A second backend, "reports", that calls the greeter with its own service account: no person's
 * password, no session that ends after 30 days. Its token session gets a new access token ahead
 * of expiry with the account's credentials (a secret, or a key for RFC 7523 assertions), and
 * when an admin revokes them it ends with a callback: the service decides what to do, nothing
 * exits the process.
 */
export async function startReports(options: {
  readonly authAddress: string;
  readonly greeterAddress: string;
  readonly credentials: ServiceCredentials;
  readonly session?: TokenSessionOptions;
  readonly onCredentialsRevoked?: (reason: AuthClientError | 'logout') => void;
}) {
  const auth = createAuthClient(options.authAddress);
  const session = await auth.serviceSession(options.credentials, { ...options.session, ...(options.onCredentialsRevoked ? { onEnded: options.onCredentialsRevoked } : {}) });
  const greeter = createClient(GreeterService, options.greeterAddress, grpc.credentials.createInsecure());
  const callCredentials = session.callCredentials();
  return {
    session,
    /** The greeter's admin-only audit, as the reports service. */
    audit: async () => (await greeter.audit({}, { credentials: callCredentials })).userId,
    greet: async () => (await greeter.greet({}, { credentials: callCredentials })).message,
    close() {
      greeter.close();
      auth.close();
    },
  };
}
