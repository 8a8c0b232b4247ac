import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { type ApiKeySchema, CredentialType, type PasskeySchema, type ServiceAccountSchema, type SessionSchema, UserOrigin, type UserSchema } from '../../gen/auth/v1/resources_pb.js';
import type { ApiKeyView } from '../core/api-keys.js';
import type { PasskeyView } from '../core/passkeys.js';
import type { SessionInfo, UserRecord } from '../core/records.js';
import type { ServiceAccountRecord } from '../core/service-accounts.js';

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

const credentialTypes = { secret: CredentialType.SECRET, key: CredentialType.KEY, certificate: CredentialType.CERTIFICATE } as const;

/** A service account as the contract shows it: its credentials by id and kind, never a secret or its hash. */
export function serviceAccountMessage(a: ServiceAccountRecord): MessageInitShape<typeof ServiceAccountSchema> {
  return {
    serviceAccountId: a.id,
    clientId: a.id,
    name: a.name,
    roles: [...a.roles],
    disabled: a.disabled,
    createdAt: timestampFromMs(a.createdAt),
    credentials: a.credentials.map((c) => ({
      credentialId: c.id,
      type: credentialTypes[c.type],
      createdAt: timestampFromMs(c.createdAt),
      kid: c.type === 'key' ? c.kid : '',
      thumbprint: c.type === 'certificate' ? c.thumbprint : c.type === 'key' ? (c.thumbprint ?? c.kid) : '',
    })),
  };
}

/** A passkey as the contract shows it: never its public key. */
export function passkeyMessage(p: PasskeyView): MessageInitShape<typeof PasskeySchema> {
  return {
    passkeyId: p.id,
    name: p.name,
    createdAt: timestampFromMs(p.createdAt),
    ...(p.lastUsedAt !== undefined ? { lastUsedAt: timestampFromMs(p.lastUsedAt) } : {}),
    transports: [...p.transports],
    backupEligible: p.backupEligible,
    backedUp: p.backedUp,
    aaguid: p.aaguid,
  };
}

/** An API key as the contract shows it: never its secret or hash. */
export function apiKeyMessage(k: ApiKeyView): MessageInitShape<typeof ApiKeySchema> {
  return {
    apiKeyId: k.id,
    ownerId: k.ownerId,
    name: k.name,
    roles: [...k.roles],
    createdAt: timestampFromMs(k.createdAt),
    expiresAt: timestampFromMs(k.expiresAt),
    ...(k.lastUsedAt !== undefined ? { lastUsedAt: timestampFromMs(k.lastUsedAt) } : {}),
  };
}
