import { type SecureService, WhoAmIResponseSchema } from '../../gen/auth/v1/secure_pb.js';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { Clock } from '../clock.js';
import type { Principal } from '../core/introspector.js';
import { RepeatedAnswers } from './answer-cache.js';
import { subjectTypes } from './auth-service.js';
import { requirePrincipal } from './call-context.js';
import type { ServiceImpl } from './handlers.js';

/** SecureService: a protected service whose every RPC runs behind the bearer interceptor. */
export function secureService(clock: Clock): ServiceImpl<typeof SecureService> {
  const whoAmI = new RepeatedAnswers(WhoAmIResponseSchema, (p: Principal) => ({
    userId: p.userId,
    username: p.username,
    roles: [...p.roles],
    sessionId: p.sessionId,
    subjectType: subjectTypes[p.subjectType],
    clientId: p.clientId ?? '',
    amr: [...p.amr],
    authTime: timestampFromMs(p.authTime * 1000),
  }));
  return {
    whoAmI: async (_req, ctx) => whoAmI.answer(requirePrincipal(ctx)),
    adminPing: async (_req, ctx) => ({ message: 'pong', userId: requirePrincipal(ctx).userId }),
    stepUpPing: async (_req, ctx) => ({ message: 'pong', authAgeSeconds: Math.max(0, Math.floor(clock.now() / 1000) - requirePrincipal(ctx).authTime) }),
  };
}
