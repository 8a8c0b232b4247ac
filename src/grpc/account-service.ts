import type { AccountService } from '../../gen/auth/v1/accounts_pb.js';
import type { AccountFlows } from '../core/accounts.js';
import { sessionMessage, userMessage } from './account-messages.js';
import type { ServiceImpl } from './handlers.js';

/** AccountService: self-service on the caller's own account, each RPC one core call. */
export function accountService(accounts: AccountFlows): ServiceImpl<typeof AccountService> {
  return {
    getAccount: async (_req, ctx) => ({ user: userMessage(await accounts.getAccount(ctx)) }),
    changePassword: async (req, ctx) => {
      await accounts.changePassword(req.currentPassword, req.newPassword, ctx);
      return {};
    },
    listSessions: async (_req, ctx) => {
      const { sessions, current } = await accounts.listSessions(ctx);
      return { sessions: sessions.map((s) => sessionMessage(s, current)) };
    },
    revokeSession: async (req, ctx) => {
      await accounts.revokeSession(req.sessionId, ctx);
      return {};
    },
    revokeOtherSessions: async (_req, ctx) => {
      await accounts.revokeOtherSessions(ctx);
      return {};
    },
  };
}
