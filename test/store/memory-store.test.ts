import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../src/clock';
import { newId } from '../../src/core/ids';
import { ACCOUNT_POLICY } from '../../src/core/login-throttle';
import { MemoryStore } from '../../src/store/memory/memory-store';
import { describeStoreConformance, T0 } from './conformance';

describeStoreConformance('memory', async ({ clock, accessGraceMs, maxSessionsPerUser }) => new MemoryStore({ clock, accessGraceMs, maxSessionsPerUser, maxAttemptEntries: 1000 }));

const HOUR = 3_600_000;
const random = { bytes: randomBytes };

async function withUser(options: { maxAttemptEntries?: number } = {}) {
  const clock = new ManualClock(T0);
  const store = new MemoryStore({ clock, accessGraceMs: 60_000, maxSessionsPerUser: 100, maxAttemptEntries: options.maxAttemptEntries ?? 1000 });
  const userId = newId(random, 'usr');
  await store.createUser({ id: userId, username: 'alice', passwordHash: 'h', roles: [], disabled: false, origin: 'api' });
  const open = async (hash: string, refreshTtlMs = HOUR, sessionMaxAgeMs = 10 * HOUR) => {
    const sessionId = newId(random, 'ses');
    await store.createSession({ userId, sessionId, userGeneration: 0, refreshHash: hash, refreshTtlMs, sessionMaxAgeMs, clientAddress: '10.0.0.1', amr: ['pwd'], userAgent: 'ua' });
    return sessionId;
  };
  return { clock, store, userId, open };
}

describe('MemoryStore.sweep', () => {
  test('drops sessions when their last access token has expired, and revoked ones at once', async () => {
    const { clock, store, userId, open } = await withUser();
    const idle = await open('i0');
    const ended = await open('e0', HOUR, HOUR);
    const revoked = await open('r0');
    await store.revokeSession(userId, revoked);
    expect(store.size().sessions).toBe(2);
    expect(store.sweep(clock.now() + HOUR - 1)).toEqual({ sessions: 0 });
    expect(store.sweep(clock.now() + HOUR)).toEqual({ sessions: 1 }); // ended at its absolute end
    expect(await store.liveSession(userId, idle)).toBeDefined(); // its access tokens may still be valid
    expect(store.sweep(clock.now() + HOUR + 60_000)).toEqual({ sessions: 1 });
    expect(store.size().sessions).toBe(0);
    expect(await store.liveSession(userId, ended)).toBeUndefined();
  });

  test('memory stays bounded under churn: everything created is swept once over', async () => {
    const { clock, store, userId, open } = await withUser();
    for (let i = 0; i < 10_000; i++) await open(`h${i}`);
    // The per-user cap keeps one user's list short whatever the churn.
    expect(store.size().sessions).toBe(100);
    expect((await store.listSessions(userId)).length).toBe(100);
    store.sweep(clock.now() + 10 * HOUR);
    expect(store.size()).toEqual({ users: 1, sessions: 0, attempts: 0, rates: 0, ceremonies: 0, apiKeys: 0 });
  });

  test('a session’s state stays one entry however often it rotates (1,000 rotations)', async () => {
    const { store, userId, open, clock } = await withUser();
    const sessionId = await open('h0');
    for (let g = 0; g < 1000; g++) {
      clock.advance(1000);
      const r = await store.rotateRefreshToken({ userId, sessionId, generation: g, hash: `h${g}`, successorHash: `h${g + 1}`, sealedSuccessor: `sealed-${g}`, refreshTtlMs: HOUR, reuseIntervalMs: 10_000, tagged: true });
      expect(r.outcome).toBe('rotated');
    }
    expect(store.size()).toEqual({ users: 1, sessions: 1, attempts: 0, rates: 0, ceremonies: 0, apiKeys: 0 });
    const entry = (store as unknown as { sessions: Map<string, Record<string, unknown>> }).sessions.get(sessionId)!;
    expect(Object.keys(entry).sort()).toEqual(['generation', 'id', 'lastRefreshedSeconds', 'next', 'previous', 'seen', 'tokenHash', 'user', 'userGeneration', 'createdSeconds', 'expiresSeconds', 'tokenExpiresSeconds', 'millis', 'amr'].sort());
    expect(entry.previous).toMatchObject({ hash: 'h999', sealed: 'sealed-999' });
    // A forged token of an old generation is recognised as this session's (the store trusts the
    // flow's tag check) and ends it: nothing of the old tokens had to be kept.
    expect((await store.rotateRefreshToken({ userId, sessionId, generation: 10, hash: 'any', successorHash: 'x', sealedSuccessor: 's', refreshTtlMs: HOUR, reuseIntervalMs: 10_000, tagged: true })).outcome).toBe('reused');
  });

  test('keeps every time exact to the millisecond, though it packs them (property)', async () => {
    // Whole seconds plus packed millisecond remainders (see SessionEntry): any integer time in ms,
    // before or after 2038, comes back unchanged.
    const time = fc.integer({ min: 0, max: 2 ** 43 });
    await fc.assert(
      fc.asyncProperty(time, fc.integer({ min: 1, max: 2 ** 35 }), fc.integer({ min: 1, max: 2 ** 35 }), async (start, ttl, maxAge) => {
        const clock = new ManualClock(start);
        const store = new MemoryStore({ clock, accessGraceMs: 0, maxSessionsPerUser: 10, maxAttemptEntries: 10 });
        const userId = newId(random, 'usr');
        await store.createUser({ id: userId, username: 'u', passwordHash: 'h', roles: [], disabled: false, origin: 'api' });
        const sessionId = newId(random, 'ses');
        const created = await store.createSession({ userId, sessionId, userGeneration: 0, refreshHash: 'h0', refreshTtlMs: ttl, sessionMaxAgeMs: maxAge, clientAddress: 'a', amr: ['pwd'], userAgent: '' });
        const end = start + maxAge;
        expect(created).toMatchObject({ now: start, expiresAt: end, refreshExpiresAt: Math.min(start + ttl, end) });
        const [info] = await store.listSessions(userId);
        expect(info).toMatchObject({ createdAt: start, expiresAt: end, refreshExpiresAt: Math.min(start + ttl, end) });
        clock.set(Math.min(start + ttl, end) - 1);
        expect(await store.liveSession(userId, sessionId)).toBeDefined();
        clock.set(Math.min(start + ttl, end));
        expect(await store.liveSession(userId, sessionId)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});

describe('MemoryStore login-attempt counters: bounded', () => {
  test('50,000 keys with one failure each never hold more than the cap', async () => {
    const { store } = await withUser({ maxAttemptEntries: 1000 });
    for (let i = 0; i < 50_000; i++) {
      await store.beginAttempt(`acct:${i}`, ACCOUNT_POLICY);
      await store.endAttempt(`acct:${i}`, ACCOUNT_POLICY, 'failed');
    }
    expect(store.size().attempts).toBe(1000);
  });

  test('at the cap, keys that hold nothing back go first: a locked account keeps its count', async () => {
    const { store } = await withUser({ maxAttemptEntries: 100 });
    for (let i = 0; i < ACCOUNT_POLICY.freeFailures; i++) {
      await store.beginAttempt('acct:victim', ACCOUNT_POLICY);
      await store.endAttempt('acct:victim', ACCOUNT_POLICY, 'failed');
    }
    expect((await store.beginAttempt('acct:victim', ACCOUNT_POLICY)).allowed).toBe(false);
    // An attacker floods one-failure keys to push the victim's count out.
    for (let i = 0; i < 10_000; i++) {
      await store.beginAttempt(`acct:flood-${i}`, ACCOUNT_POLICY);
      await store.endAttempt(`acct:flood-${i}`, ACCOUNT_POLICY, 'failed');
    }
    expect((await store.beginAttempt('acct:victim', ACCOUNT_POLICY)).allowed).toBe(false);
    expect(store.size().attempts).toBe(100);
  });

  test('a refused or released attempt leaves no entry behind', async () => {
    const { store } = await withUser();
    for (let i = 0; i < 1000; i++) {
      expect(await store.beginAttempt(`acct:${i}`, ACCOUNT_POLICY)).toEqual({ allowed: true });
      await store.endAttempt(`acct:${i}`, ACCOUNT_POLICY, 'released');
      expect(await store.checkAttempt(`addr:${i}`, ACCOUNT_POLICY)).toEqual({ allowed: true });
    }
    expect(store.size().attempts).toBe(0);
  });

  test('API keys: an owner’s are read without a scan of everyone’s; the sweep drops expired ones and those of deleted owners', async () => {
    const clock = new ManualClock(T0);
    const store = new MemoryStore({ clock, accessGraceMs: 60_000, maxSessionsPerUser: 10, maxAttemptEntries: 1000 });
    const owners: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const id = newId({ bytes: randomBytes }, 'usr');
      await store.createUser({ id, username: `owner${i}`, passwordHash: 'h', roles: [], disabled: false, origin: 'api' });
      owners.push(id);
      const key = (n: number, ttl: number) => ({ id: newId({ bytes: randomBytes }, 'apk'), ownerId: id, name: `k${n}`, roles: [], hash: 'h'.repeat(43), createdAt: T0, expiresAt: T0 + ttl, ownerGeneration: 0 });
      expect(await store.createApiKey(key(1, 60_000), 5)).toBe('created');
      expect(await store.createApiKey(key(2, 3_600_000), 5)).toBe('created');
    }
    expect(store.size().apiKeys).toBe(4000);
    expect((await store.listApiKeys(owners[7]!)).map((k) => k.name)).toEqual(['k1', 'k2']);
    await store.deleteUser(owners[0]!);
    clock.advance(60_001);
    store.sweep(clock.now());
    expect(store.size().apiKeys).toBe(1999);
    expect((await store.listApiKeys(owners[7]!)).map((k) => k.name)).toEqual(['k2']);
  });
});
