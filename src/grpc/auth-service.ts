import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { type AuthService, InactiveReason, SubjectType, ValidateResponseSchema } from '../../gen/auth/v1/auth_pb.js';
import { MAX_ACCESS_TOKEN_LENGTH, type InvalidReason } from '../core/access-token.js';
import { certificateMatches, type Introspector, type Principal } from '../core/introspector.js';
import type { RegisterFlow } from '../core/register.js';
import type { ServiceTokenFlow } from '../core/service-accounts.js';
import type { SecondFactors } from '../core/mfa.js';
import type { ApiKeys } from '../core/api-keys.js';
import type { Passkeys } from '../core/passkeys.js';
import type { PasswordResetRequests } from '../core/password-reset.js';
import type { NewPasswordPolicy } from '../core/register.js';
import type { LoginResult, SessionFlows, TokenPair } from '../core/session-flows.js';
import { AuthError } from '../errors.js';
import { RepeatedAnswers } from './answer-cache.js';
import type { ServiceImpl } from './handlers.js';

export interface AuthServiceDeps {
  readonly register: RegisterFlow;
  readonly sessions: SessionFlows;
  readonly introspector: Introspector;
  readonly serviceTokens: ServiceTokenFlow;
  readonly jwksJson: () => string;
  readonly factors: SecondFactors;
  readonly resets: PasswordResetRequests;
  readonly policy: NewPasswordPolicy;
  readonly passkeys: Passkeys;
  readonly apiKeys: ApiKeys;
}

/** The contract's InactiveReason for each verifier reason. */
export const inactiveReasons: Readonly<Record<InvalidReason, InactiveReason>> = {
  malformed: InactiveReason.MALFORMED,
  bad_signature: InactiveReason.BAD_SIGNATURE,
  expired: InactiveReason.EXPIRED,
  not_yet_valid: InactiveReason.NOT_YET_VALID,
  revoked: InactiveReason.REVOKED,
  wrong_issuer: InactiveReason.WRONG_ISSUER,
  wrong_audience: InactiveReason.WRONG_AUDIENCE,
  wrong_algorithm: InactiveReason.WRONG_ALGORITHM,
  wrong_token_type: InactiveReason.WRONG_TOKEN_TYPE,
  certificate_mismatch: InactiveReason.CERTIFICATE_MISMATCH,
};

export const subjectTypes = { user: SubjectType.USER, service_account: SubjectType.SERVICE_ACCOUNT } as const;

/** AuthService: each RPC adapts its request to one core call, nothing more. */
export function authService(deps: AuthServiceDeps): ServiceImpl<typeof AuthService> {
  const active = new RepeatedAnswers(ValidateResponseSchema, (p: Principal) => ({
    active: true,
    userId: p.userId,
    username: p.username,
    roles: [...p.roles],
    sessionId: p.sessionId,
    tokenId: p.tokenId,
    issuedAt: timestampFromMs(p.issuedAt * 1000),
    expiresAt: timestampFromMs(p.expiresAt * 1000),
    subjectType: subjectTypes[p.subjectType],
    clientId: p.clientId ?? '',
    certificateThumbprint: p.certificateThumbprint ?? '',
    amr: [...p.amr],
    authTime: timestampFromMs(p.authTime * 1000),
  }));
  return {
    register: async (req, ctx) => deps.register.register(req.username, req.password, ctx),
    login: async (req, ctx) => loginAnswer(await deps.sessions.login(req.username, req.password, ctx)),
    completeLogin: async (req, ctx) => {
      const done = await deps.sessions.completeLogin(req.mfaToken, req.code, ctx);
      return { ...tokens(done), usedRecoveryCode: done.usedRecoveryCode, recoveryCodesLeft: done.recoveryCodesLeft };
    },
    exchangeApiKey: async (req, ctx) => deps.apiKeys.exchange(req.apiKey, ctx),
    startPasskeyLogin: async (req, ctx) => deps.passkeys.startLogin(req.username, ctx),
    finishPasskeyLogin: async (req, ctx) => tokens(await deps.passkeys.finishLogin(req, ctx, (user, amr) => deps.sessions.startAuthenticated(user, amr, ctx))),
    requestPasswordReset: async (req, ctx) => {
      await deps.resets.request(req.username, ctx);
      return {};
    },
    resetPassword: async (req, ctx) => {
      await deps.factors.resetPassword({ username: req.username, code: req.code, newPassword: req.newPassword, mfaCode: req.mfaCode }, deps.policy, ctx);
      return {};
    },
    refresh: async (req, ctx) => tokens(await deps.sessions.refresh(req.refreshToken, ctx)),
    logout: async (req, ctx) => {
      await deps.sessions.logout(req.refreshToken, ctx);
      return {};
    },
    validate: async (req) => {
      if (req.accessToken.length === 0) throw new AuthError('invalid_argument', 'access_token is required');
      if (req.accessToken.length > MAX_ACCESS_TOKEN_LENGTH) {
        throw new AuthError('invalid_argument', `access_token must be at most ${MAX_ACCESS_TOKEN_LENGTH} characters`);
      }
      const result = await deps.introspector.introspect(req.accessToken);
      if (!result.ok) return { active: false, reason: inactiveReasons[result.reason] };
      // A certificate-bound token with another certificate (RFC 8705 section 3): inactive.
      if (req.certificateThumbprint !== '' && !certificateMatches(result.principal, req.certificateThumbprint)) {
        return { active: false, reason: InactiveReason.CERTIFICATE_MISMATCH };
      }
      return active.answer(result.principal);
    },
    issueServiceToken: async (req, ctx) => {
      const issued = await deps.serviceTokens.issue(req, ctx);
      return { accessToken: issued.accessToken, tokenType: 'Bearer', expiresIn: issued.expiresIn };
    },
    getJwks: async () => ({ jwksJson: deps.jwksJson() }),
  };
}

function loginAnswer(result: LoginResult) {
  if (result.mfaRequired) return { mfaRequired: true, mfaToken: result.mfaToken, mfaExpiresIn: result.mfaExpiresIn };
  return { ...tokens(result), mfaEnrollmentRequired: result.mfaEnrollmentRequired };
}

function tokens(pair: TokenPair) {
  return {
    accessToken: pair.accessToken,
    tokenType: pair.tokenType,
    expiresIn: pair.expiresIn,
    refreshToken: pair.refreshToken,
    refreshExpiresIn: pair.refreshExpiresIn,
  };
}
