import { ManualClock } from '../../src/clock';
import { systemRandom } from '../../src/random';
import { AccessTokenIssuer, AccessTokenVerifier } from '../../src/core/access-token';
import { silentLog, type EventLog } from '../../src/core/events';
import { Introspector } from '../../src/core/introspector';
import { PasswordDenylist } from '../../src/core/password-denylist';
import { LoginThrottle } from '../../src/core/login-throttle';
import { newId } from '../../src/core/ids';
import { createKeySet, generateEcKey, refreshTagKeys } from '../../src/core/keys';
import { OpaqueRefreshTokens, REFRESH_TOKEN_LENGTH } from '../../src/core/refresh-token';
import { RegisterFlow } from '../../src/core/register';
import { SessionFlows, type LoginResult, type TokenPair } from '../../src/core/session-flows';
import { AuthError } from '../../src/errors';
import { MemoryStore } from '../../src/store/memory/memory-store';
import { fastHasher, PASSWORD } from '../helpers/server';

const MIN = 60_000;
const HOUR = 60 * MIN;
const options = { refreshTtlMs: 3_600_000, sessionMaxAgeMs: 4 * 3_600_000, refreshReuseIntervalMs: 10_000 };
const tokenOptions = { issuer: 'iss', audience: 'aud', accessTtlMs: 900_000, clockSkewMs: 30_000 };

/** The core wired by hand, no gRPC: a manual clock and the memory store. */
async function setup() {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock, accessGraceMs: 930_000, maxSessionsPerUser: 100, maxAttemptEntries: 1000 });
  const keys = createKeySet([generateEcKey()]);
  const hasher = fastHasher();
  const refreshTokens = new OpaqueRefreshTokens(systemRandom, refreshTagKeys(keys));
  const flows = new SessionFlows(
    {
      sessions: store,
      hasher,
      random: systemRandom,
      throttle: new LoginThrottle(store),
      accessTokens: new AccessTokenIssuer(keys, tokenOptions, clock, systemRandom),
      refreshTokens,
    },
    options,
  );
  const introspector = new Introspector(new AccessTokenVerifier(keys, tokenOptions, clock), store, clock);
  const { userId } = await new RegisterFlow({ users: store, hasher, random: systemRandom, rates: store }, { registration: 'open', minLength: 15, denylist: new PasswordDenylist(), perAddress: { limit: 10, windowMs: 3_600_000 }, overall: { limit: 100, windowMs: 60_000 } }).register('alice', PASSWORD, { log: silentLog });
  const events: Array<{ level: string; fields: Record<string, unknown> }> = [];
  const record = (level: string) => (fields: Record<string, unknown>) => void events.push({ level, fields });
  const log: EventLog = { info: record('info'), warn: record('warn'), error: record('error') };
  const ctx = { log };
  return { clock, store, flows, introspector, ctx, events, userId, refreshTokens, login: () => sessionOf(flows.login('alice', PASSWORD, ctx)) };
}

const rejectsWith = async (p: Promise<unknown>, code: string) => {
  await expect(p).rejects.toBeInstanceOf(AuthError);
  await expect(p).rejects.toMatchObject({ code });
};

describe('SessionFlows with a manual clock', () => {
  test('idle expiry slides with each rotation', async () => {
    const { clock, flows, ctx, login } = await setup();
    let { refreshToken, refreshExpiresIn } = await login();
    expect(refreshExpiresIn).toBe(3600);
    for (let i = 0; i < 3; i++) {
      clock.advance(59 * MIN);
      ({ refreshToken, refreshExpiresIn } = await flows.refresh(refreshToken, ctx));
      expect(refreshExpiresIn).toBe(3600);
    }
    clock.advance(HOUR);
    await rejectsWith(flows.refresh(refreshToken, ctx), 'invalid_refresh_token');
  });

  test('an unused refresh token expires after the idle TTL, to the millisecond', async () => {
    const { clock, flows, ctx, login } = await setup();
    const first = await login();
    clock.advance(HOUR - 1);
    const ok = await flows.refresh(first.refreshToken, ctx);
    clock.advance(HOUR);
    await rejectsWith(flows.refresh(ok.refreshToken, ctx), 'invalid_refresh_token');
  });

  test('the absolute session lifetime bounds everything, however often it is refreshed', async () => {
    const { clock, flows, introspector, ctx, login } = await setup();
    let tokens = await login();
    for (let elapsed = 50; elapsed < 4 * 60; elapsed += 50) {
      clock.advance(50 * MIN);
      tokens = await flows.refresh(tokens.refreshToken, ctx);
      expect(tokens.refreshExpiresIn).toBeLessThanOrEqual(4 * 3600 - elapsed * 60);
      expect(tokens.expiresIn).toBeLessThanOrEqual(4 * 3600 - elapsed * 60);
    }
    // 200 minutes in: 40 minutes of session left, so both tokens end at the session's end.
    expect(tokens.refreshExpiresIn).toBe(40 * 60);
    clock.advance(40 * MIN);
    await rejectsWith(flows.refresh(tokens.refreshToken, ctx), 'invalid_refresh_token');
    expect(await introspector.introspect(tokens.accessToken)).toEqual({ ok: false, reason: 'expired' });
  });

  test.each([
    { name: 'at the start of the interval', after: 0, same: true },
    { name: 'at exactly the interval', after: 10_000, same: true },
    { name: 'one millisecond past the interval', after: 10_001, same: false },
  ])('reuse interval edge: retry $name', async ({ after, same }) => {
    const { clock, flows, introspector, ctx, login, events } = await setup();
    const first = await login();
    const second = await flows.refresh(first.refreshToken, ctx);
    clock.advance(after);
    if (same) {
      const retry = await flows.refresh(first.refreshToken, ctx);
      expect(retry.refreshToken).toBe(second.refreshToken);
      expect(retry.accessToken).not.toBe(second.accessToken);
      expect((await introspector.introspect(retry.accessToken)).ok).toBe(true);
    } else {
      await rejectsWith(flows.refresh(first.refreshToken, ctx), 'invalid_refresh_token');
      expect(await introspector.introspect(second.accessToken)).toEqual({ ok: false, reason: 'revoked' });
      expect(events).toContainEqual({ level: 'warn', fields: expect.objectContaining({ event: 'refresh_token_reused' }) });
    }
  });

  test('an older generation is re-use even inside the interval', async () => {
    const { flows, introspector, ctx, login } = await setup();
    const first = await login();
    const second = await flows.refresh(first.refreshToken, ctx);
    const third = await flows.refresh(second.refreshToken, ctx);
    await rejectsWith(flows.refresh(first.refreshToken, ctx), 'invalid_refresh_token');
    await rejectsWith(flows.refresh(third.refreshToken, ctx), 'invalid_refresh_token');
    expect(await introspector.introspect(third.accessToken)).toEqual({ ok: false, reason: 'revoked' });
  });

  test('the store holds no usable token: only hashes and a successor sealed under its parent', async () => {
    const { store, flows, ctx, login } = await setup();
    const first = await login();
    const second = await flows.refresh(first.refreshToken, ctx);
    const sessions = (store as unknown as { sessions: Map<string, { previous: unknown; tokenHash: string }> }).sessions;
    const dump = JSON.stringify([...sessions.values()].map((s) => ({ previous: s.previous, tokenHash: s.tokenHash })));
    expect(dump).toContain('sealed');
    expect(dump).not.toContain(first.refreshToken.slice(4, 40));
    expect(dump).not.toContain(second.refreshToken.slice(4, 40));
  });

  test('a token of a generation long gone is still recognised as re-use, by its tag', async () => {
    const { flows, introspector, ctx, login, clock } = await setup();
    const first = await login();
    let current = first;
    for (let i = 0; i < 20; i++) {
      clock.advance(MIN);
      current = await flows.refresh(current.refreshToken, ctx);
    }
    await rejectsWith(flows.refresh(first.refreshToken, ctx), 'invalid_refresh_token');
    expect(await introspector.introspect(current.accessToken)).toEqual({ ok: false, reason: 'revoked' });
  });

  test('a forged token built from the public ids (no valid tag) revokes nothing', async () => {
    const { flows, introspector, ctx, login, userId } = await setup();
    const tokens = await login();
    const sid = (await introspector.introspect(tokens.accessToken).then((r) => (r.ok ? r.principal.sessionId : '')))!;
    const otherKeys = new OpaqueRefreshTokens(systemRandom, refreshTagKeys(createKeySet([generateEcKey()])));
    for (const generation of [0, 1, 5]) {
      await rejectsWith(flows.refresh(otherKeys.generate(userId, sid, generation).token, ctx), 'invalid_refresh_token');
      await flows.logout(otherKeys.generate(userId, sid, generation).token, ctx);
    }
    expect((await introspector.introspect(tokens.accessToken)).ok).toBe(true);
    await expect(flows.refresh(tokens.refreshToken, ctx)).resolves.toBeDefined();
  });

  test('a disabled account: the right password gets account_disabled, a wrong one the usual answer', async () => {
    const { flows, ctx, store, userId } = await setup();
    await store.updateUser(userId, { disabled: true, revokeSessions: true });
    await rejectsWith(flows.login('alice', PASSWORD, ctx), 'account_disabled');
    await rejectsWith(flows.login('alice', 'a wrong password, long enough', ctx), 'invalid_credentials');
  });

  test('a refresh issues access tokens with the roles of now, and a role change shows in introspection at once', async () => {
    const { flows, ctx, store, userId, introspector, login } = await setup();
    const tokens = await login();
    await store.updateUser(userId, { roles: ['admin'] });
    const seen = await introspector.introspect(tokens.accessToken);
    expect(seen).toMatchObject({ ok: true, principal: { roles: ['admin'] } });
    const next = await flows.refresh(tokens.refreshToken, ctx);
    expect(JSON.parse(Buffer.from(next.accessToken.split('.')[1]!, 'base64url').toString())).toMatchObject({ roles: ['admin'] });
  });

  test('login failures look alike and cost a hash either way', async () => {
    const { flows, ctx } = await setup();
    const verifyDummy = jest.spyOn((flows as unknown as { deps: { hasher: { verifyDummy: () => Promise<void> } } }).deps.hasher, 'verifyDummy');
    await rejectsWith(flows.login('nobody', PASSWORD, ctx), 'invalid_credentials');
    expect(verifyDummy).toHaveBeenCalledTimes(1);
    await rejectsWith(flows.login('alice', 'wrong password here', ctx), 'invalid_credentials');
    expect(verifyDummy).toHaveBeenCalledTimes(1);
  });
});

describe('OpaqueRefreshTokens', () => {
  const keys = refreshTagKeys(createKeySet([generateEcKey()]));
  const codec = new OpaqueRefreshTokens(systemRandom, keys);
  const uid = newId(systemRandom, 'usr');
  const sid = newId(systemRandom, 'ses');

  test('prefix, user and session ids, generation, 256 random bits, a tag; parse gives them back with the store key', () => {
    const { token, hash, generation } = codec.generate(uid, sid, 7);
    expect(token).toMatch(/^rt2_[A-Za-z0-9_-]{112}$/);
    expect(token.length).toBe(REFRESH_TOKEN_LENGTH);
    expect(generation).toBe(7);
    expect(hash).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(codec.parse(token)).toEqual({ userId: uid, sessionId: sid, generation: 7, hash, tagged: true });
    expect(codec.generate(uid, sid, 7).token).not.toBe(token);
  });

  test('any altered character, or another key, fails the tag', () => {
    const { token } = codec.generate(uid, sid, 1);
    for (let i = 4; i < token.length; i += 7) {
      const altered = token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
      expect(codec.parse(altered)?.tagged).toBe(false);
    }
    expect(new OpaqueRefreshTokens(systemRandom, refreshTagKeys(createKeySet([generateEcKey()]))).parse(token)?.tagged).toBe(false);
  });

  test('a rotated key set still reads tokens tagged by its older keys', () => {
    const older = createKeySet([generateEcKey()]);
    const newer = createKeySet([generateEcKey(), older.signing]);
    const { token } = new OpaqueRefreshTokens(systemRandom, refreshTagKeys(older)).generate(uid, sid, 0);
    expect(new OpaqueRefreshTokens(systemRandom, refreshTagKeys(newer)).parse(token)).toMatchObject({ userId: uid, sessionId: sid, tagged: true });
  });

  test.each(['', 'rt2_', 'rt1_' + 'A'.repeat(112), 'rt2_' + 'A'.repeat(111), 'rt2_' + 'A'.repeat(113), 'rt2_' + '+'.repeat(112), 'eyJhbGciOi.x.y'])(
    'not well formed: %p',
    (token) => expect(codec.parse(token)).toBeUndefined(),
  );

  test('only ids of our shape', () => {
    expect(() => codec.generate(uid, 'ses_short', 0)).toThrow('not a ses identifier');
    expect(() => codec.generate('usr_x', sid, 0)).toThrow('not a usr identifier');
  });

  test('a sealed successor opens only with its parent and only unaltered', () => {
    const parent = codec.generate(uid, sid, 0).token;
    const child = codec.generate(uid, sid, 1).token;
    const sealed = codec.seal(parent, child);
    expect(codec.open(parent, sealed)).toBe(child);
    expect(codec.open(codec.generate(uid, sid, 0).token, sealed)).toBeUndefined();
    const flipped = Buffer.from(sealed, 'base64url');
    flipped[20] = flipped[20]! ^ 1;
    expect(codec.open(parent, flipped.toString('base64url'))).toBeUndefined();
    expect(codec.open(parent, '')).toBeUndefined();
  });
});

/** The token pair of a Login that started a session (these users have no second factor). */
async function sessionOf(result: Promise<LoginResult>): Promise<TokenPair> {
  const login = await result;
  if (login.mfaRequired) throw new Error('expected a session, not an MFA challenge');
  return login;
}
