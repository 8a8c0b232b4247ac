import type { AccountService } from '../../gen/auth/v1/account_pb.js';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { AccountFlows } from '../core/accounts.js';
import type { FlowContext } from '../core/events.js';
import { selfOf, type SecondFactors } from '../core/mfa.js';
import { refuseApiKeyToken, type ApiKeys } from '../core/api-keys.js';
import type { Passkeys } from '../core/passkeys.js';
import type { SessionFlows } from '../core/session-flows.js';
import { apiKeyMessage, passkeyMessage, sessionMessage, userMessage } from './account-messages.js';
import type { ServiceImpl } from './handlers.js';

/** AccountService: self-service on the caller's own account, each RPC one core call. */
export function accountService(accounts: AccountFlows, factors: SecondFactors, sessions: Pick<SessionFlows, 'checkPassword'>, passkeys: Passkeys, apiKeys: ApiKeys): ServiceImpl<typeof AccountService> {
  return sessionsOnly({
    getAccount: async (_req, ctx) => {
      const user = userMessage(await accounts.getAccount(ctx));
      const mfa = await factors.status(ctx);
      return {
        user,
        mfa: { enabled: mfa.enabled, recoveryCodesLeft: mfa.recoveryCodesLeft, ...(mfa.enabledAt !== undefined ? { enabledAt: timestampFromMs(mfa.enabledAt) } : {}) },
      };
    },
    enrollTotp: async (_req, ctx) => {
      const e = await factors.enroll(ctx);
      return { enrollmentId: e.enrollmentId, secret: e.secret, otpauthUri: e.otpauthUri, expiresAt: timestampFromMs(e.expiresAt) };
    },
    confirmTotp: async (req, ctx) => ({ recoveryCodes: await factors.confirm(req, (username, password) => sessions.checkPassword(username, password, ctx), ctx) }),
    disableTotp: async (req, ctx) => {
      await factors.disable(req, (username, password) => sessions.checkPassword(username, password, ctx), ctx);
      return {};
    },
    regenerateRecoveryCodes: async (req, ctx) => ({ recoveryCodes: await factors.regenerateRecoveryCodes(req.code, ctx) }),
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
    startPasskeyRegistration: async (_req, ctx) => passkeys.startRegistration(ctx),
    finishPasskeyRegistration: async (req, ctx) => ({ passkey: passkeyMessage(await passkeys.finishRegistration(req, ctx)) }),
    listPasskeys: async (_req, ctx) => ({ passkeys: (await passkeys.listOwn(ctx)).map(passkeyMessage) }),
    renamePasskey: async (req, ctx) => ({ passkey: passkeyMessage(await passkeys.rename(req.passkeyId, req.name, ctx)) }),
    deletePasskey: async (req, ctx) => {
      await passkeys.delete(req.passkeyId, req.code, ctx);
      return {};
    },
    // The owner is the caller, never a field of the request (CVE-2025-61928).
    createApiKey: async (req, ctx) => {
      const { key, secret } = await apiKeys.create(selfOf(ctx).userId, req, ctx);
      return { apiKey: apiKeyMessage(key), secret };
    },
    listApiKeys: async (_req, ctx) => ({ apiKeys: (await apiKeys.list(selfOf(ctx).userId)).map(apiKeyMessage) }),
    revokeApiKey: async (req, ctx) => {
      await apiKeys.revoke(selfOf(ctx).userId, req.apiKeyId, ctx);
      return {};
    },
  });
}

/** Every RPC of `impl` refuses a token exchanged for an API key (see refuseApiKeyToken): AccountService's and AdminService's. */
export function sessionsOnly<T extends object>(impl: T, what?: string): T {
  const guarded: Record<string, unknown> = {};
  for (const [name, handler] of Object.entries(impl) as Array<[string, (req: unknown, ctx: FlowContext) => Promise<unknown>]>) {
    guarded[name] = (req: unknown, ctx: FlowContext) => {
      refuseApiKeyToken(ctx, what);
      return handler(req, ctx);
    };
  }
  return guarded as T;
}
