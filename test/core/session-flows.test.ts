import { ManualClock } from '../../src/clock';
import { systemRandom } from '../../src/random';
import { AccessTokenIssuer, AccessTokenVerifier } from '../../src/core/access-token';
import { silentLog, type EventLog } from '../../src/core/events';
import { Introspector } from '../../src/core/introspector';
import { PasswordDenylist } from '../../src/core/password-denylist';
import { LoginThrottle } from '../../src/core/login-throttle';
import { newId } from '../../src/core/ids';
import { createKeySet, generateEcKey } from '../../src/core/keys';
import { OpaqueRefreshTokens } from '../../src/core/refresh-token';
import { RegisterFlow } from '../../src/core/register';
import { SessionFlows } from '../../src/core/session-flows';
import { AuthError } from '../../src/errors';
import { MemoryStore } from '../../src/store/memory-store';
import { fastHasher, PASSWORD } from '../helpers/server';

const MIN = 60_000;
const HOUR = 60 * MIN;
const options = { refreshTtlMs: 3_600_000, sessionMaxAgeMs: 4 * 3_600_000, refreshReuseIntervalMs: 10_000 };
const tokenOptions = { issuer: 'iss', audience: 'aud', accessTtlMs: 900_000, clockSkewMs: 30_000 };

/** The core wired by hand, no gRPC: a manual clock and the memory store. */
async function setup() {
  const clock = new ManualClock();
  const store = new MemoryStore({ revokedRetention: HOUR });
  const keys = createKeySet([generateEcKey()]);
  const hasher = fastHasher();
  const deps = { users: store, sessions: store, hasher, clock, random: systemRandom };
  const flows = new SessionFlows(
    {
      ...deps,
      throttle: new LoginThrottle(store, clock),
      accessTokens: new AccessTokenIssuer(keys, tokenOptions, clock, systemRandom),
      refreshTokens: new OpaqueRefreshTokens(systemRandom),
    },
    options,
  );
  const introspector = new Introspector(new AccessTokenVerifier(keys, tokenOptions, clock), store, clock);
  await new RegisterFlow(deps, { registration: 'open', minLength: 15, denylist: new PasswordDenylist() }).register('alice', PASSWORD, { log: silentLog });
  const events: Array<{ level: string; fields: Record<string, unknown> }> = [];
  const log: EventLog = { info: (fields) => events.push({ level: 'info', fields }), warn: (fields) => events.push({ level: 'warn', fields }) };
  const ctx = { log };
  return { clock, store, flows, introspector, ctx, events, login: () => flows.login('alice', PASSWORD, ctx) };
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
    const maps = store as unknown as { sessions: Map<string, unknown>; rotated: Map<string, unknown> };
    const dump = JSON.stringify([...maps.sessions, ...maps.rotated]);
    expect(dump).toContain('sealedSuccessor');
    expect(dump).not.toContain(first.refreshToken.slice(4));
    expect(dump).not.toContain(second.refreshToken.slice(4));
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
  const codec = new OpaqueRefreshTokens(systemRandom);

  const sid = newId(systemRandom, 'ses');

  test('prefix, the session id, 256 random bits, base64url; parse gives back session and store key', () => {
    const { token, hash } = codec.generate(sid);
    expect(token).toMatch(/^rt1_[A-Za-z0-9_-]{64}$/);
    expect(token.slice(4, 25)).toBe(sid.slice(4, 25));
    expect(hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(codec.parse(token)).toEqual({ sessionId: sid, hash });
    expect(codec.generate(sid).token).not.toBe(token);
  });

  test.each(['', 'rt1_', 'rt2_' + 'A'.repeat(64), 'rt1_' + 'A'.repeat(63), 'rt1_' + 'A'.repeat(65), 'rt1_' + '+'.repeat(64), 'eyJhbGciOi.x.y'])(
    'not well formed: %p',
    (token) => expect(codec.parse(token)).toBeUndefined(),
  );

  test('only session ids of our shape', () => {
    expect(() => codec.generate('ses_short')).toThrow('session id');
  });

  test('a sealed successor opens only with its parent and only unaltered', () => {
    const parent = codec.generate(sid).token;
    const child = codec.generate(sid).token;
    const sealed = codec.seal(parent, child);
    expect(codec.open(parent, sealed)).toBe(child);
    expect(codec.open(codec.generate(sid).token, sealed)).toBeUndefined();
    const flipped = Buffer.from(sealed, 'base64url');
    flipped[20] = flipped[20]! ^ 1;
    expect(codec.open(parent, flipped.toString('base64url'))).toBeUndefined();
    expect(codec.open(parent, '')).toBeUndefined();
  });
});
