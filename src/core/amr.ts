/*
 * How a session's user authenticated (RFC 8176 `amr`): the values its tokens carry, and the few
 * shared lists the stores hand out, so that millions of sessions hold a pointer each.
 */

/** RFC 8176 method values a session's tokens carry. */
export const AMR_PASSWORD: readonly string[] = Object.freeze(['pwd']);
export const AMR_PASSWORD_OTP: readonly string[] = Object.freeze(['pwd', 'otp']);
/** A user-verified passkey: proof of possession of a key, unlocked by the user (RFC 8176: pop, mfa). */
export const AMR_PASSKEY: readonly string[] = Object.freeze(['pop', 'mfa']);

/** Whether a session began with more than a password: a TOTP code, or a user-verified passkey. */
export function multiFactor(amr: readonly string[]): boolean {
  return amr.includes('otp') || amr.includes('mfa');
}

const AMR_LISTS = new Map<string, readonly string[]>([
  ['pwd', AMR_PASSWORD],
  ['pwd otp', AMR_PASSWORD_OTP],
  ['pop mfa', AMR_PASSKEY],
]);

/** A session's amr as stores keep it ('pwd otp'), as one shared frozen list: millions of sessions hold a pointer each. */
export function sharedAmr(stored: string): readonly string[] {
  return AMR_LISTS.get(stored) ?? Object.freeze(stored.split(' '));
}
