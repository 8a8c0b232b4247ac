import { AuthError } from '../errors.js';
import { canonicalUsername, checkLoginFields } from './credentials.js';
import type { EventLog, FlowContext } from './events.js';
import { addressOf } from './login-throttle.js';
import type { SecondFactors } from './mfa.js';
import type { RateStore, UserStore } from './register.js';

/** What the reset hook is told: everything the user needs to reset, nothing more. */
export interface ResetNotice {
  readonly userId: string;
  readonly username: string;
  /** The one-time code: the receiver hands it to the user and keeps no copy. */
  readonly code: string;
  readonly expiresAt: number;
}

/** The delivery port (the signed webhook): takes a notice into its own bounded, retrying queue. */
export interface ResetDelivery {
  send(notice: ResetNotice): void;
}

export interface ResetRequestOptions {
  /** Requests one client address may make a window: past it the caller is told to wait. */
  readonly perAddress: { readonly limit: number; readonly windowMs: number };
  /**
   * Codes one user may be sent a window for requests from one client address: past it that
   * address's requests for the user are dropped, silently to the caller. Per user and address, so
   * requests from elsewhere never spend the owner's budget: the owner always gets a code.
   */
  readonly perUserAndAddress: { readonly limit: number; readonly windowMs: number };
  /** Requests being looked up at once, at most; past it new ones are dropped (audited). */
  readonly maxPending: number;
}

export const RESET_REQUEST_DEFAULTS: ResetRequestOptions = {
  perAddress: { limit: 10, windowMs: 3_600_000 },
  perUserAndAddress: { limit: 3, windowMs: 3_600_000 },
  maxPending: 256,
};

/**
 * RequestPasswordReset: answers at once, the same for every username, before anything is looked
 * up (so neither the answer nor its timing tells whether an account exists); the lookup, the
 * code and the delivery happen after, bounded by `maxPending`. Throttled per client address (the
 * caller is told) and per user and address once the user is found (silently: the caller must not
 * learn that a name is real; a made-up name leaves no counter behind).
 *
 * No budget is shared by all addresses: whoever asks from elsewhere, the owner's own requests are
 * never the ones dropped. The newest code wins (one code a user, 15 minutes), so each delivery
 * carries the code that works; how many a user can be sent an hour is bounded by the addresses
 * asking (each at most `perAddress` requests), and every request is audited.
 */
export class PasswordResetRequests {
  private pending = 0;

  constructor(
    private readonly deps: { readonly users: Pick<UserStore, 'findUserByUsername'>; readonly rates: RateStore; readonly factors: SecondFactors; readonly delivery: ResetDelivery | undefined },
    private readonly options: ResetRequestOptions = RESET_REQUEST_DEFAULTS,
  ) {}

  /** Requests being worked on now (for tests and metrics). */
  get inFlight(): number {
    return this.pending;
  }

  async request(rawUsername: string, ctx: FlowContext): Promise<void> {
    if (!this.deps.delivery) throw new AuthError('failed_precondition', 'password reset by request is not configured on this server (AUTH_PASSWORD_RESET_HOOK_URL); ask an admin for a reset code');
    checkLoginFields(rawUsername, '-');
    const address = addressOf(ctx);
    if (address !== undefined) {
      const hit = await this.deps.rates.hitRate(`rst:${address}`, this.options.perAddress.limit, this.options.perAddress.windowMs);
      if (!hit.allowed) {
        const seconds = Math.max(1, Math.ceil(hit.retryAfterMs / 1000));
        ctx.log.warn({ event: 'password_reset_throttled', scope: 'address' }, 'password reset requests throttled');
        throw new AuthError('throttled', `too many password reset requests; retry in ${seconds} s`, { retryAfterSeconds: seconds });
      }
    }
    if (this.pending >= this.options.maxPending) {
      ctx.log.warn({ event: 'password_reset_dropped', why: 'busy' }, 'password reset request dropped: too many in progress');
      return;
    }
    this.pending++;
    void this.work(rawUsername, address, ctx.log)
      .catch((err: unknown) => ctx.log.warn({ event: 'password_reset_dropped', why: 'store', cause: { type: err instanceof Error ? err.name : typeof err } }, 'password reset request failed'))
      .finally(() => this.pending--);
  }

  private async work(rawUsername: string, address: string | undefined, log: EventLog): Promise<void> {
    const username = canonicalUsername(rawUsername);
    if (username === undefined) return;
    const user = await this.deps.users.findUserByUsername(username);
    if (!user) {
      log.info({ event: 'password_reset_unknown_user' }, 'password reset asked for an unknown username');
      return;
    }
    // Counted per user and address, after the lookup: a made-up name leaves no counter behind (the caller was answered already).
    const { limit, windowMs } = this.options.perUserAndAddress;
    if (!(await this.deps.rates.hitRate(`rst:${user.id}:${address ?? '-'}`, limit, windowMs)).allowed) {
      log.warn({ event: 'password_reset_throttled', scope: 'user', userId: user.id }, 'password reset requests for one user from one address throttled');
      return;
    }
    const { code, expiresAt } = await this.deps.factors.createResetCode(user, { address });
    log.warn({ event: 'password_reset_code_created', userId: user.id, via: 'hook' }, 'password reset code created');
    this.deps.delivery!.send({ userId: user.id, username: user.username, code, expiresAt });
  }
}
