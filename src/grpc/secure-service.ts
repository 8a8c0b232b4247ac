import { type SecureService, WhoAmIResponseSchema } from '../../gen/auth/v1/auth_pb.js';
import type { Principal } from '../core/introspector.js';
import { RepeatedAnswers } from './answer-cache.js';
import { subjectTypes } from './auth-service.js';
import { requirePrincipal } from './call-context.js';
import type { ServiceImpl } from './handlers.js';

/** SecureService: a protected service whose every RPC runs behind the bearer interceptor. */
export function secureService(): ServiceImpl<typeof SecureService> {
  const whoAmI = new RepeatedAnswers(WhoAmIResponseSchema, (p: Principal) => ({
    userId: p.userId,
    username: p.username,
    roles: [...p.roles],
    sessionId: p.sessionId,
    subjectType: subjectTypes[p.subjectType],
    clientId: p.clientId ?? '',
  }));
  return {
    whoAmI: async (_req, ctx) => whoAmI.answer(requirePrincipal(ctx)),
    adminPing: async (_req, ctx) => ({ message: 'pong', userId: requirePrincipal(ctx).userId }),
  };
}
