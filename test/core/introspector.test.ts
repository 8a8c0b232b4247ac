import { ManualClock } from '../../src/clock';
import { systemRandom } from '../../src/random';
import { AccessTokenIssuer, AccessTokenVerifier } from '../../src/core/access-token';
import { Introspector } from '../../src/core/introspector';
import { createKeySet, generateEcKey } from '../../src/core/keys';

const options = { issuer: 'iss', audience: 'aud', accessTtlMs: 900_000, clockSkewMs: 30_000 };

function setup(cacheSize = 3) {
  const clock = new ManualClock();
  const keys = createKeySet([generateEcKey()]);
  const issuer = new AccessTokenIssuer(keys, options, clock, systemRandom);
  const verifier = new AccessTokenVerifier(keys, options, clock);
  const verify = jest.spyOn(verifier, 'verify');
  const active = new Set(['ses_1', 'ses_2']);
  const user = { id: 'usr_1', username: 'a', roles: [] as string[], revision: 1 };
  const liveSession = jest.fn(async (_uid: string, sid: string) => (active.has(sid) ? user : undefined));
  const introspector = new Introspector(verifier, { liveSession, liveCredential: async () => undefined, liveApiKey: async () => undefined }, clock, { cacheSize, clockSkewMs: 30_000 });
  const token = (sid = 'ses_1') => issuer.issue({ userId: 'usr_1', username: 'a', roles: [], sessionId: sid }).token;
  return { clock, introspector, verify, active, token, user, liveSession };
}

describe('Introspector verification cache', () => {
  test('a repeated token skips the signature check', async () => {
    const { introspector, verify, token } = setup();
    const t = token();
    expect((await introspector.introspect(t)).ok).toBe(true);
    expect((await introspector.introspect(t)).ok).toBe(true);
    expect(verify).toHaveBeenCalledTimes(1);
  });

  test('never bypasses the revocation check', async () => {
    const { introspector, active, token } = setup();
    const t = token();
    expect((await introspector.introspect(t)).ok).toBe(true);
    active.delete('ses_1');
    expect(await introspector.introspect(t)).toEqual({ ok: false, reason: 'revoked' });
  });

  test('an entry ends with its token: expired tokens are verified again and refused', async () => {
    const { clock, introspector, verify, token } = setup();
    const t = token();
    await introspector.introspect(t);
    clock.advance((900 + 29) * 1000);
    expect((await introspector.introspect(t)).ok).toBe(true);
    expect(verify).toHaveBeenCalledTimes(1);
    clock.advance(1000);
    expect(await introspector.introspect(t)).toEqual({ ok: false, reason: 'expired' });
    expect(verify).toHaveBeenCalledTimes(2);
    expect(introspector.cached).toBe(0);
  });

  test('bounded: under size pressure the oldest entries go first', async () => {
    const { introspector, verify, token } = setup(3);
    const tokens = [token(), token(), token(), token()];
    for (const t of tokens) await introspector.introspect(t);
    expect(introspector.cached).toBe(3);
    verify.mockClear();
    await introspector.introspect(tokens[3]!);
    expect(verify).not.toHaveBeenCalled();
    await introspector.introspect(tokens[0]!);
    expect(verify).toHaveBeenCalledTimes(1);
  });

  test('failures are not cached', async () => {
    const { introspector, verify } = setup();
    await introspector.introspect('garbage');
    await introspector.introspect('garbage');
    expect(verify).toHaveBeenCalledTimes(2);
    expect(introspector.cached).toBe(0);
  });
});

describe('Introspector and the live user', () => {
  test('the same principal object while the user is unchanged; a new one, with the roles of now, after a change', async () => {
    const { introspector, token, user, liveSession } = setup();
    const t = token();
    const first = await introspector.introspect(t);
    const again = await introspector.introspect(t);
    expect(first.ok && again.ok && first.principal === again.principal).toBe(true);
    user.roles = ['admin'];
    user.revision = 2;
    const changed = await introspector.introspect(t);
    expect(changed).toMatchObject({ ok: true, principal: { roles: ['admin'] } });
    expect(changed.ok && first.ok && changed.principal !== first.principal).toBe(true);
    expect(liveSession).toHaveBeenCalledTimes(3);
  });
});
