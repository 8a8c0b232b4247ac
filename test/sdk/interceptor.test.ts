import { Metadata, status } from '@grpc/grpc-js';
import { GreeterService } from '../../examples/greeter/gen/greeter/v1/greeter_pb';
import { startGreeter } from '../../examples/greeter/server';
import { ManualClock } from '../../src/clock';
import { systemRandom } from '../../src/random';
import { AccessTokenIssuer } from '../../src/core/access-token';
import { createKeySet, generateEcKey, type KeySet } from '../../src/core/keys';
import { createClient } from '../../src/grpc/client';

const options = { issuer: 'https://auth.test', audience: 'svc', accessTtlMs: 900_000 };
const subject = { userId: 'usr_1', username: 'alice', roles: [], sessionId: 'ses_AAAAAAAAAAAAAAAAAAAAAA' };

describe('local verification with a JWKS cache', () => {
  const clock = new ManualClock();
  const oldKeys = createKeySet([generateEcKey()]);
  const newKeys = createKeySet([generateEcKey()]);
  let served: KeySet | 'down' = oldKeys;
  const fetchJwks = jest.fn(async () => {
    if (served === 'down') throw new Error('auth service unreachable');
    return served.jwksJson;
  });
  let greeter: Awaited<ReturnType<typeof startGreeter>>;
  let client: ReturnType<typeof createClient<typeof GreeterService>>;
  beforeAll(async () => {
    greeter = await startGreeter({ mode: 'local', fetchJwks, issuer: options.issuer, audience: options.audience, minRefetchIntervalMs: 60_000 }, clock);
    client = createClient(GreeterService, greeter.address);
  });
  afterAll(async () => {
    client.close();
    await greeter.close();
  });

  const greet = (keys: KeySet) => {
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${new AccessTokenIssuer(keys, options, clock, systemRandom).issue(subject).token}`);
    return client.greet({}, { metadata }).then(
      () => 'OK',
      (e: { code: number; details: string }) => `${status[e.code]}: ${e.details}`,
    );
  };

  test('fetches once, then verifies from the cache', async () => {
    expect(await greet(oldKeys)).toBe('OK');
    expect(await greet(oldKeys)).toBe('OK');
    expect(fetchJwks).toHaveBeenCalledTimes(1);
  });

  test('an unknown kid fetches again, but not more often than the minimum interval', async () => {
    served = newKeys;
    expect(await greet(newKeys)).toBe('UNAUTHENTICATED: access token is not valid: bad signature');
    expect(fetchJwks).toHaveBeenCalledTimes(1);
    clock.advance(60_000);
    expect(await greet(newKeys)).toBe('OK');
    expect(fetchJwks).toHaveBeenCalledTimes(2);
  });

  test('while the auth service is unreachable, the keys it last gave keep verifying', async () => {
    served = 'down';
    clock.advance(60_000);
    expect(await greet(createKeySet([generateEcKey()]))).toBe('UNAUTHENTICATED: access token is not valid: bad signature');
    expect(fetchJwks).toHaveBeenCalledTimes(3);
    expect(await greet(newKeys)).toBe('OK');
  });
});
