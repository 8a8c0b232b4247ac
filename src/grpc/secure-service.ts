import { create } from '@bufbuild/protobuf';
import { type SecureService, WhoAmIResponseSchema } from '../../gen/auth/v1/auth_pb.js';
import { repeatedAnswers, type UnaryServiceImpl } from './adapter.js';
import { requirePrincipal, type Principal } from './call-context.js';

/** SecureService: a protected service whose every RPC runs behind the bearer interceptor. */
export function secureService(): UnaryServiceImpl<typeof SecureService> {
  // A caller seen before has the same principal (see principalOf), so the same answer.
  const whoAmI = repeatedAnswers((p: Principal) => create(WhoAmIResponseSchema, { userId: p.userId, username: p.username, roles: [...p.roles], sessionId: p.sessionId }));
  return {
    whoAmI: async (_req, ctx) => whoAmI(requirePrincipal(ctx)),
    adminPing: async (_req, ctx) => ({ message: 'pong', userId: requirePrincipal(ctx).userId }),
  };
}
