import { AuthError } from '../errors.js';
import type { Store } from './store.js';

const UNAVAILABLE = 'session store unavailable';

/**
 * Puts a bound on every store operation and one meaning on every store failure: whatever a store
 * throws, and whatever it fails to answer within `timeoutMs`, reaches the caller as
 * `unavailable` (the cause is kept for the log); `timeoutMs` undefined means the store answers
 * synchronously and needs no timer. Store operations are atomic, so a failed one
 * has changed nothing: the caller may simply retry.
 */
export function guardStore(store: Store, timeoutMs: number | undefined, onError: () => void = () => {}): Store {
  const unavailable = (err: unknown): AuthError => {
    onError();
    return err instanceof AuthError && err.code === 'unavailable' ? err : new AuthError('unavailable', UNAVAILABLE, { cause: err });
  };
  // A store that answers within the call (the built-in memory store) needs no timer: it would
  // cost one per operation on the hot path and could never fire.
  const guardSync =
    <A extends unknown[], R>(op: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      try {
        return op.apply(store, args).then(undefined, (err: unknown) => Promise.reject(unavailable(err)));
      } catch (err) {
        return Promise.reject(unavailable(err));
      }
    };
  // An operation ends once: answered, failed or timed out. A late answer or failure after the
  // timeout changes nothing and is not counted a second time.
  const guardTimed =
    <A extends unknown[], R>(op: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      new Promise<R>((resolve, reject) => {
        let ended = false;
        const end = (action: () => void) => {
          if (ended) return;
          ended = true;
          clearTimeout(timer);
          action();
        };
        const timer = setTimeout(() => end(() => reject(unavailable(new Error(`no answer within ${timeoutMs} ms`)))), timeoutMs);
        Promise.resolve()
          .then(() => op.apply(store, args))
          .then(
            (value) => end(() => resolve(value)),
            (err: unknown) => end(() => reject(unavailable(err))),
          );
      });
  const guard = timeoutMs === undefined ? guardSync : guardTimed;
  return {
    createUser: guard(store.createUser),
    findUserByUsername: guard(store.findUserByUsername),
    createSession: guard(store.createSession),
    rotateRefreshToken: guard(store.rotateRefreshToken),
    revokeSessionByRefreshToken: guard(store.revokeSessionByRefreshToken),
    isSessionActive: guard(store.isSessionActive),
    beginAttempt: guard(store.beginAttempt),
    endAttempt: guard(store.endAttempt),
    connect: guard(store.connect),
    ping: guard(store.ping),
    // Closing is not a call's work; it must run to the end.
    close: () => store.close(),
  };
}
