import { randomBytes } from 'node:crypto';
import type { ManualClock } from '../../../src/clock';
import { newId } from '../../../src/core/ids';
import type { NewUser } from '../../../src/core/records';
import type { Store } from '../../../src/store/store';

export const random = { bytes: randomBytes };
export const T0 = Date.UTC(2030, 0, 1);
export const HOUR = 3_600_000;
export const GRACE = 60_000;
export const MAX_SESSIONS = 5;

/** What the suite needs of a store under test: made on the suite's clock, with these limits. */
export type MakeStore = (options: { clock: ManualClock; accessGraceMs: number; maxSessionsPerUser: number }) => Promise<Store>;

/** The store and clock of the running test: made fresh before each test by the entry point. */
export interface Conformance {
  readonly store: Store;
  readonly clock: ManualClock;
}

/** What several ports' suites do to set a case up, on the running test's store. */
export function helpers(t: Conformance) {
  const newUser = (overrides: Partial<NewUser> = {}): NewUser => ({
    id: newId(random, 'usr'),
    username: `user-${randomBytes(4).toString('hex')}`,
    passwordHash: '$argon2id$x',
    roles: ['admin'],
    disabled: false,
    origin: 'api',
    ...overrides,
  });
  const addUser = async (overrides: Partial<NewUser> = {}) => {
    const user = newUser(overrides);
    expect(await t.store.createUser(user)).toBe('created');
    return (await t.store.getUser(user.id))!;
  };
  const session = async (userId: string, hash = 'h0', overrides: { userGeneration?: number; maxAgeMs?: number; refreshTtlMs?: number } = {}) => {
    const sessionId = newId(random, 'ses');
    const result = await t.store.createSession({
      userId,
      sessionId,
      userGeneration: overrides.userGeneration ?? 0,
      refreshHash: hash,
      refreshTtlMs: overrides.refreshTtlMs ?? HOUR,
      sessionMaxAgeMs: overrides.maxAgeMs ?? 24 * HOUR,
      clientAddress: '10.0.0.1',
      userAgent: 'test-agent/1',
      amr: ['pwd'],
    });
    return { sessionId, result };
  };
  const rotate = (userId: string, sessionId: string, generation: number, hash: string, successorHash: string, tagged = true) =>
    t.store.rotateRefreshToken({ userId, sessionId, generation, hash, tagged, successorHash, sealedSuccessor: `sealed:${successorHash}`, refreshTtlMs: HOUR, reuseIntervalMs: 10_000 });
  const live = (userId: string, sessionId: string) => t.store.liveSession(userId, sessionId);
  return { newUser, addUser, session, rotate, live };
}
