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
  const guard =
    <A extends unknown[], R>(op: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      new Promise<R>((resolve, reject) => {
        // No timer for a store that answers within the call (the built-in memory store): it costs
        // a timer per operation on the hot path and can never fire.
        const timer =
          timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                onError();
                reject(new AuthError('unavailable', UNAVAILABLE, { cause: new Error(`no answer within ${timeoutMs} ms`) }));
              }, timeoutMs);
        Promise.resolve()
          .then(() => op.apply(store, args))
          .then(
            (value) => {
              clearTimeout(timer);
              resolve(value);
            },
            (err: unknown) => {
              clearTimeout(timer);
              onError();
              reject(err instanceof AuthError && err.code === 'unavailable' ? err : new AuthError('unavailable', UNAVAILABLE, { cause: err }));
            },
          );
      });
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
