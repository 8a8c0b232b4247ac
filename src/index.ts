/**
 * Public API of the auth service package: compose and run the service in-process, or reuse its
 * parts (the token core, the store interface, the gRPC bridge, handlers and interceptors).
 */
export type { AuthServiceApp, RunningService } from './app.js';
export { composeService, type ServiceOverrides } from './compose.js';
export { startService } from './run.js';
export { loadConfig, readConfig, configTable, settings, ConfigError, type Config, type ConfigReport, type Env } from './config.js';
export { AuthError, authErrorCodes, type AuthErrorCode } from './errors.js';
export { StoreSetupError } from './store/store.js';
export { systemClock, ManualClock, repeat, type Clock, type Timer } from './clock.js';
export { systemRandom, pooledRandom, type Random } from './random.js';
export {
  AccessTokenIssuer,
  AccessTokenVerifier,
  MAX_ACCESS_TOKEN_LENGTH,
  type AccessClaims,
  type InvalidReason,
  type VerifyResult,
} from './core/access-token.js';
export { createKeySet, ecSigningKey, generateEcKey, generateEcPem, hmacSigningKey, jwkThumbprint, loadEcKeyFile, type KeySet, type SigningKey } from './core/keys.js';
export { Introspector, type Introspection, type Principal } from './core/introspector.js';
export { OpaqueRefreshTokens, hashRefreshToken, type RefreshTokenStrategy } from './core/refresh-token.js';
export { Argon2Hasher, ARGON2ID_OWASP, type PasswordHasher } from './core/password-hasher.js';
export { MemoryStore } from './store/memory/memory-store.js';
export type { Store, UserStore, SessionStore, AccountStore, UserRecord, NewUser, SessionInfo, LiveUser, NewSession, RotateRequest, RotateResult } from './store/store.js';
export { serviceDefinition, methodPath, EncodedMessage } from './grpc/bridge.js';
export { serviceHandlers, type ServiceImpl, type HandlerOptions } from './grpc/handlers.js';
export { createClient, type Client, type CallOptions } from './grpc/client.js';
export { AuthClientError } from './grpc/client-error.js';
export { bearerInterceptor, type BearerOptions } from './grpc/bearer-interceptor.js';
export { loggingInterceptor } from './grpc/logging-interceptor.js';
export { policiesFrom, type MethodPolicy } from './grpc/access-policy.js';
export { callContext, requirePrincipal, type CallContext } from './grpc/call-context.js';
export { statusByCode, toStatus } from './grpc/status.js';
export { createAuthServer, serverLimits, type AuthServer } from './grpc/server.js';
