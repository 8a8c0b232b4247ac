import type { SecureService } from '../../gen/auth/v1/auth_pb.js';
import type { UnaryServiceImpl } from './adapter.js';
import { requirePrincipal } from './call-context.js';

/** SecureService: a protected service whose every RPC runs behind the bearer interceptor. */
export function secureService(): UnaryServiceImpl<typeof SecureService> {
  return {
    whoAmI: async (_req, ctx) => {
      const p = requirePrincipal(ctx);
      return { userId: p.userId, username: p.username, roles: [...p.roles], sessionId: p.sessionId };
    },
    adminPing: async (_req, ctx) => ({ message: 'pong', userId: requirePrincipal(ctx).userId }),
  };
}
