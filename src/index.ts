/**
 * Public API of the auth service package: compose and run the service in-process, or reuse its
 * parts (the token core, the store interface, the gRPC adapter and interceptors).
 */
export { composeService, type AuthServiceApp, type ServiceOverrides } from './compose.js';
export { loadConfig, ConfigError, configVariables, type Config, type Env } from './config.js';
export { AuthError, authErrorCodes, type AuthErrorCode } from './errors.js';
export { systemClock, systemRandom, ManualClock, type Clock, type Random } from './clock.js';
export {
  AccessTokenIssuer,
  AccessTokenVerifier,
  MAX_ACCESS_TOKEN_LENGTH,
  type AccessClaims,
  type InvalidReason,
  type VerifyResult,
} from './core/access-token.js';
export { createKeySet, ecSigningKey, generateEcKey, generateEcPem, hmacSigningKey, jwkThumbprint, loadEcKeyFile, type KeySet, type SigningKey } from './core/keys.js';
export { Introspector } from './core/introspector.js';
export { RefreshTokenCodec, hashRefreshToken } from './core/refresh-token.js';
export { Argon2Hasher, ARGON2ID_OWASP, type PasswordHasher } from './core/password-hasher.js';
export { MemoryStore } from './store/memory-store.js';
export type { Store, UserStore, SessionStore, UserRecord, SessionRecord, NewSession, RefreshTokenRef, RotateRequest, RotateResult } from './store/store.js';
export { serviceDefinition, unaryHandlers, type UnaryServiceImpl } from './grpc/adapter.js';
export { createUnaryClient, type UnaryClient, type CallOptions } from './grpc/client.js';
export { bearerInterceptor, loggingInterceptor, type BearerOptions } from './grpc/interceptors.js';
export { policiesFrom, type MethodPolicy } from './grpc/access-policy.js';
export { callContext, requirePrincipal, type CallContext, type Principal } from './grpc/call-context.js';
export { statusByCode, toStatus } from './grpc/status.js';
export { createAuthServer, serverLimits, type AuthServer } from './grpc/server.js';
