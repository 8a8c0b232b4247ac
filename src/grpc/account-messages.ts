import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { UserOrigin, type SessionSchema, type UserSchema } from '../../gen/auth/v1/accounts_pb.js';
import type { SessionInfo, UserRecord } from '../core/records.js';

/** A user as the contract shows it: never the password hash. */
export function userMessage(u: UserRecord): MessageInitShape<typeof UserSchema> {
  return {
    userId: u.id,
    username: u.username,
    roles: [...u.roles],
    createdAt: timestampFromMs(u.createdAt),
    passwordChangedAt: timestampFromMs(u.passwordChangedAt),
    disabled: u.disabled,
    origin: u.origin === 'file' ? UserOrigin.FILE : UserOrigin.API,
  };
}

export function sessionMessage(s: SessionInfo, current = ''): MessageInitShape<typeof SessionSchema> {
  return {
    sessionId: s.id,
    createdAt: timestampFromMs(s.createdAt),
    lastRefreshedAt: timestampFromMs(s.lastRefreshedAt),
    expiresAt: timestampFromMs(s.expiresAt),
    refreshExpiresAt: timestampFromMs(s.refreshExpiresAt),
    clientAddress: s.clientAddress,
    userAgent: s.userAgent,
    current: s.id === current,
  };
}
