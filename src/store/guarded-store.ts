import type { Clock } from '../clock.js';
import { AuthError } from '../errors.js';
import { StoreSetupError, type Store } from './store.js';

const UNAVAILABLE = 'session store unavailable';

/** Every operation of the Store interface; a method added there and not here fails to compile. */
export const OPERATIONS = [
  'createUser',
  'findUserByUsername',
  'getUser',
  'listUsers',
  'updateUser',
  'deleteUser',
  'createSession',
  'rotateRefreshToken',
  'revokeSessionByRefreshToken',
  'liveSession',
  'listSessions',
  'revokeSession',
  'checkAttempt',
  'beginAttempt',
  'endAttempt',
  'recordFailure',
  'resetAttempts',
  'fileUserIds',
  'createServiceAccount',
  'getServiceAccount',
  'listServiceAccounts',
  'updateServiceAccount',
  'deleteServiceAccount',
  'liveCredential',
  'useAssertion',
  'hitRate',
  'readUserSecrets',
  'writeUserSecrets',
  'connect',
  'ping',
  'close',
] as const satisfies ReadonlyArray<keyof Store>;
const everyOperationGuarded: Exclude<keyof Store, (typeof OPERATIONS)[number]> extends never ? true : never = true;
void everyOperationGuarded;

export interface GuardOptions {
  /** Bound on every operation; undefined when the store answers within the call and needs none. */
  readonly timeoutMs: number | undefined;
  readonly clock: Clock;
  /** Called once for every operation that fails or times out (for metrics). */
  readonly onError?: () => void;
}

/**
 * Puts a bound on every store operation and one meaning on every store failure: whatever a store
 * throws, and whatever it fails to answer within `timeoutMs`, reaches the caller as
 * `unavailable` (the cause is kept for the log), except a StoreSetupError, which stops start-up. Every operation of the interface is guarded (a
 * new one that is not listed fails to compile). Closing is not a call's work and runs
 * to the end unguarded.
 */
export function guardStore(store: Store, options: GuardOptions): Store {
  const { timeoutMs, clock, onError = () => {} } = options;
  const unavailable = (err: unknown): AuthError | StoreSetupError => {
    onError();
    if (err instanceof StoreSetupError) return err;
    return err instanceof AuthError && err.code === 'unavailable' ? err : new AuthError('unavailable', UNAVAILABLE, { cause: err });
  };
  // A store that answers within the call (the built-in memory store) needs no timer: it would
  // cost one per operation on the hot path and could never fire.
  const guardUntimed =
    (op: (...args: unknown[]) => Promise<unknown>) =>
    (...args: unknown[]): Promise<unknown> => {
      let result: Promise<unknown>;
      try {
        result = op.apply(store, args);
      } catch (err) {
        return Promise.reject(unavailable(err));
      }
      return result.then(undefined, (err: unknown) => Promise.reject(unavailable(err)));
    };
  // An operation ends once: answered, failed or timed out. A late answer or failure after the
  // timeout changes nothing and is not counted a second time.
  const guardTimed =
    (op: (...args: unknown[]) => Promise<unknown>) =>
    (...args: unknown[]): Promise<unknown> =>
      new Promise((resolve, reject) => {
        let ended = false;
        const end = (action: () => void) => {
          if (ended) return;
          ended = true;
          timer.cancel();
          action();
        };
        const timer = clock.setTimer(timeoutMs!, () => end(() => reject(unavailable(new Error(`no answer within ${timeoutMs} ms`)))));
        Promise.resolve()
          .then(() => op.apply(store, args))
          .then(
            (value) => end(() => resolve(value)),
            (err: unknown) => end(() => reject(unavailable(err))),
          );
      });
  const guard = timeoutMs === undefined ? guardUntimed : guardTimed;
  const guarded: Record<string, unknown> = {};
  for (const name of OPERATIONS) {
    const op = (store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[name]!;
    guarded[name] = name === 'close' ? op.bind(store) : guard(op);
  }
  return guarded as unknown as Store;
}
