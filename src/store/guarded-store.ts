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
  'beginGuardedAttempt',
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
  'putCeremony',
  'takeCeremony',
  'linkPasskey',
  'passkeyOwner',
  'unlinkPasskey',
  'createApiKey',
  'getApiKey',
  'listApiKeys',
  'revokeApiKey',
  'touchApiKey',
  'liveApiKey',
  'exportSessions',
  'readMaintenance',
  'setMaintenance',
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
  /** Called once as every operation ends: its name, seconds taken, and how it failed, if it did (for metrics). */
  readonly onDone?: (operation: string, seconds: number, failure: 'error' | 'timeout' | undefined) => void;
}

/**
 * Puts a bound on every store operation and one meaning on every store failure: whatever a store
 * throws, and whatever it fails to answer within `timeoutMs`, reaches the caller as
 * `unavailable` (the cause is kept for the log), except a StoreSetupError, which stops start-up. Every operation of the interface is guarded (a
 * new one that is not listed fails to compile). Closing is not a call's work and runs
 * to the end unguarded.
 */
export function guardStore(store: Store, options: GuardOptions): Store {
  const { timeoutMs, clock, onDone = () => {} } = options;
  const unavailable = (err: unknown): AuthError | StoreSetupError => {
    if (err instanceof StoreSetupError) return err;
    return err instanceof AuthError && err.code === 'unavailable' ? err : new AuthError('unavailable', UNAVAILABLE, { cause: err });
  };
  // A store that answers within the call (the built-in memory store) needs no timer: it would
  // cost one per operation on the hot path and could never fire.
  const guardUntimed =
    (name: string, op: (...args: unknown[]) => Promise<unknown>) =>
    (...args: unknown[]): Promise<unknown> => {
      const started = performance.now();
      const done = (failure?: 'error') => onDone(name, (performance.now() - started) / 1000, failure);
      let result: Promise<unknown>;
      try {
        result = op.apply(store, args);
      } catch (err) {
        done('error');
        return Promise.reject(unavailable(err));
      }
      return result.then(
        (value) => {
          done();
          return value;
        },
        (err: unknown) => {
          done('error');
          return Promise.reject(unavailable(err));
        },
      );
    };
  // An operation ends once: answered, failed or timed out. A late answer or failure after the
  // timeout changes nothing and is not counted a second time.
  const guardTimed =
    (name: string, op: (...args: unknown[]) => Promise<unknown>) =>
    (...args: unknown[]): Promise<unknown> =>
      new Promise((resolve, reject) => {
        const started = performance.now();
        let ended = false;
        const end = (failure: 'error' | 'timeout' | undefined, action: () => void) => {
          if (ended) return;
          ended = true;
          timer.cancel();
          onDone(name, (performance.now() - started) / 1000, failure);
          action();
        };
        const timer = clock.setTimer(timeoutMs!, () => end('timeout', () => reject(unavailable(new Error(`no answer within ${timeoutMs} ms`)))));
        Promise.resolve()
          .then(() => op.apply(store, args))
          .then(
            (value) => end(undefined, () => resolve(value)),
            (err: unknown) => end('error', () => reject(unavailable(err))),
          );
      });
  const guard = timeoutMs === undefined ? guardUntimed : guardTimed;
  // A store written against an earlier interface (JavaScript, or cast) is refused at start, not at its first call.
  const missing = OPERATIONS.filter((name) => typeof (store as unknown as Record<string, unknown>)[name] !== 'function');
  if (missing.length > 0) throw new StoreSetupError(`the store has no ${missing.join(', ')}: a store implements every operation of the Store interface (see the CHANGELOG's Upgrading notes)`);
  const guarded: Record<string, unknown> = {};
  for (const name of OPERATIONS) {
    const op = (store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[name]!;
    guarded[name] = name === 'close' ? op.bind(store) : guard(name, op);
  }
  return guarded as unknown as Store;
}
