import { create } from '@bufbuild/protobuf';
import { type SecureService, type WhoAmIResponse, WhoAmIResponseSchema } from '../../gen/auth/v1/auth_pb.js';
import { frozenMessage, type UnaryServiceImpl } from './adapter.js';
import { requirePrincipal, type Principal } from './call-context.js';

/** SecureService: a protected service whose every RPC runs behind the bearer interceptor. */
export function secureService(): UnaryServiceImpl<typeof SecureService> {
  // A caller seen before has the same principal (see principalOf): one frozen answer for it.
  const answers = new WeakMap<Principal, WhoAmIResponse>();
  return {
    whoAmI: async (_req, ctx) => {
      const p = requirePrincipal(ctx);
      let answer = answers.get(p);
      if (answer === undefined) {
        answer = frozenMessage(create(WhoAmIResponseSchema, { userId: p.userId, username: p.username, roles: [...p.roles], sessionId: p.sessionId }));
        answers.set(p, answer);
      }
      return answer;
    },
    adminPing: async (_req, ctx) => ({ message: 'pong', userId: requirePrincipal(ctx).userId }),
  };
}
