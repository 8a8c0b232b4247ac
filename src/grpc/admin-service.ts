import type { AdminService } from '../../gen/auth/v1/admin_pb.js';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { AdminFlows } from '../core/accounts.js';
import type { SecondFactors } from '../core/mfa.js';
import type { ApiKeys } from '../core/api-keys.js';
import type { Passkeys } from '../core/passkeys.js';
import type { ServiceAccountAdmin } from '../core/service-accounts.js';
import { isId } from '../core/ids.js';
import { AuthError } from '../errors.js';
import { apiKeyMessage, passkeyMessage, serviceAccountMessage, sessionMessage, userMessage } from './account-messages.js';
import { sessionsOnly } from './account-service.js';
import type { ServiceImpl } from './handlers.js';

/** AdminService: the administration of users (the proto requires the admin role of every RPC). */
export function adminService(admin: AdminFlows, accounts: ServiceAccountAdmin, factors: SecondFactors, passkeys: Passkeys, apiKeys: ApiKeys): ServiceImpl<typeof AdminService> {
  // Admin work needs a signed-in admin: an API key's token could otherwise make credentials (users,
  // service accounts, secrets, keys, reset codes) that outlive the key's revocation.
  return sessionsOnly({
    createServiceAccountApiKey: async (req, ctx) => {
      if (!isId(req.serviceAccountId, 'sva')) throw new AuthError('not_found', 'service account not found');
      const { key, secret } = await apiKeys.create(req.serviceAccountId, req, ctx);
      return { apiKey: apiKeyMessage(key), secret };
    },
    listApiKeys: async (req) => {
      if (!isId(req.ownerId, 'usr') && !isId(req.ownerId, 'sva')) throw new AuthError('not_found', 'owner not found');
      return { apiKeys: (await apiKeys.list(req.ownerId)).map(apiKeyMessage) };
    },
    revokeApiKey: async (req, ctx) => {
      await apiKeys.adminRevoke(req.apiKeyId, ctx);
      return {};
    },
    listUserPasskeys: async (req) => ({ passkeys: (await passkeys.list(req.userId)).map(passkeyMessage) }),
    deleteUserPasskey: async (req, ctx) => {
      await passkeys.adminDelete(req.userId, req.passkeyId, ctx);
      return {};
    },
    resetMfa: async (req, ctx) => {
      await factors.adminReset(req.userId, ctx);
      return {};
    },
    createPasswordResetCode: async (req, ctx) => {
      const { code, expiresAt } = await factors.adminCreateResetCode(req.userId, ctx);
      return { code, expiresAt: timestampFromMs(expiresAt) };
    },
    createUser: async (req, ctx) => ({ user: userMessage(await admin.createUser(req, ctx)) }),
    getUser: async (req) => ({ user: userMessage(await admin.getUser(req)) }),
    listUsers: async (req) => {
      const page = await admin.listUsers(req);
      return { users: page.users.map(userMessage), nextPageToken: page.nextPageToken };
    },
    setRoles: async (req, ctx) => ({ user: userMessage(await admin.setRoles(req.userId, req.roles, ctx)) }),
    setPassword: async (req, ctx) => {
      await admin.setPassword(req.userId, req.newPassword, ctx);
      return {};
    },
    disableUser: async (req, ctx) => ({ user: userMessage(await admin.disableUser(req.userId, ctx)) }),
    enableUser: async (req, ctx) => ({ user: userMessage(await admin.enableUser(req.userId, ctx)) }),
    deleteUser: async (req, ctx) => {
      await admin.deleteUser(req.userId, ctx);
      return {};
    },
    listUserSessions: async (req) => ({ sessions: (await admin.listUserSessions(req.userId)).map((s) => sessionMessage(s)) }),
    revokeUserSessions: async (req, ctx) => {
      await admin.revokeUserSessions(req.userId, ctx);
      return {};
    },
    resetLoginThrottle: async (req, ctx) => {
      await admin.resetLoginThrottle(req.username, ctx);
      return {};
    },
    createServiceAccount: async (req, ctx) => {
      const { account, secret, secretId } = await accounts.create(req.name, req.roles, ctx);
      return { serviceAccount: serviceAccountMessage(account), clientId: account.id, clientSecret: secret, secretId };
    },
    getServiceAccount: async (req) => ({ serviceAccount: serviceAccountMessage(await accounts.get(req.serviceAccountId)) }),
    listServiceAccounts: async (req) => {
      const page = await admin.page(req.pageSize, req.pageToken, { field: 'name_prefix', value: req.namePrefix }, (q) => accounts.list(q), (a) => a.name);
      return { serviceAccounts: page.items.map(serviceAccountMessage), nextPageToken: page.nextPageToken };
    },
    setServiceAccountRoles: async (req, ctx) => ({ serviceAccount: serviceAccountMessage(await accounts.setRoles(req.serviceAccountId, req.roles, ctx)) }),
    disableServiceAccount: async (req, ctx) => ({ serviceAccount: serviceAccountMessage(await accounts.setDisabled(req.serviceAccountId, true, ctx)) }),
    enableServiceAccount: async (req, ctx) => ({ serviceAccount: serviceAccountMessage(await accounts.setDisabled(req.serviceAccountId, false, ctx)) }),
    deleteServiceAccount: async (req, ctx) => {
      await accounts.delete(req.serviceAccountId, ctx);
      return {};
    },
    addServiceAccountSecret: async (req, ctx) => {
      const { secret, secretId } = await accounts.addSecret(req.serviceAccountId, ctx);
      return { clientSecret: secret, secretId };
    },
    revokeServiceAccountSecret: async (req, ctx) => {
      await accounts.removeCredential(req.serviceAccountId, req.secretId, 'secret', ctx);
      return {};
    },
    addServiceAccountKey: async (req, ctx) => accounts.addKey(req.serviceAccountId, req.publicKeyJwk, ctx),
    removeServiceAccountKey: async (req, ctx) => {
      await accounts.removeCredential(req.serviceAccountId, req.keyId, 'key', ctx);
      return {};
    },
    bindServiceAccountCertificate: async (req, ctx) => accounts.bindCertificate(req.serviceAccountId, req.thumbprint, ctx),
    unbindServiceAccountCertificate: async (req, ctx) => {
      await accounts.removeCredential(req.serviceAccountId, req.bindingId, 'certificate', ctx);
      return {};
    },
  }, 'use AdminService');
}
