import type { AdminService } from '../../gen/auth/v1/accounts_pb.js';
import type { AdminFlows } from '../core/accounts.js';
import { sessionMessage, userMessage } from './account-messages.js';
import type { ServiceImpl } from './handlers.js';

/** AdminService: the administration of users (the proto requires the admin role of every RPC). */
export function adminService(admin: AdminFlows): ServiceImpl<typeof AdminService> {
  return {
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
  };
}
