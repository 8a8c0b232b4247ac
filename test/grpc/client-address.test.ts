import { Metadata, status } from '@grpc/grpc-js';
import { clientAddressResolver } from '../../src/grpc/client-address';
import { describeWithRedis } from '../helpers/redis';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';

const forwardedFor = (...values: string[]) => {
  const metadata = new Metadata();
  for (const v of values) metadata.add('x-forwarded-for', v);
  return metadata;
};

describe('clientAddressResolver', () => {
  const cases: Array<{ name: string; trusted: string[]; peer: string; xff: string[]; want: string }> = [
    { name: 'no trusted proxies: the peer, whatever x-forwarded-for says', trusted: [], peer: '127.0.0.1:5000', xff: ['203.0.113.9'], want: '127.0.0.1' },
    { name: 'an untrusted peer: its x-forwarded-for is ignored', trusted: ['10.0.0.0/8'], peer: '192.0.2.1:5000', xff: ['203.0.113.9'], want: '192.0.2.1' },
    { name: 'a trusted peer: the hop it names', trusted: ['10.0.0.0/8'], peer: '10.1.2.3:5000', xff: ['203.0.113.9'], want: '203.0.113.9' },
    { name: 'the rightmost untrusted hop, not what the client wrote first', trusted: ['10.0.0.0/8'], peer: '10.1.2.3:5000', xff: ['6.6.6.6, 203.0.113.9'], want: '203.0.113.9' },
    { name: 'through two trusted proxies', trusted: ['10.0.0.0/8'], peer: '10.1.2.3:5000', xff: ['6.6.6.6, 203.0.113.9, 10.9.9.9'], want: '203.0.113.9' },
    { name: 'several x-forwarded-for headers read as one list', trusted: ['10.0.0.0/8'], peer: '10.1.2.3:5000', xff: ['6.6.6.6', '203.0.113.9'], want: '203.0.113.9' },
    { name: 'only trusted hops: the far end', trusted: ['10.0.0.0/8'], peer: '10.1.2.3:5000', xff: ['10.0.0.7'], want: '10.0.0.7' },
    { name: 'a hop that is not an address stops at the proxy that sent it', trusted: ['10.0.0.0/8'], peer: '10.1.2.3:5000', xff: ['203.0.113.9, not-an-ip'], want: '10.1.2.3' },
    { name: 'no x-forwarded-for from a trusted peer: the peer', trusted: ['10.0.0.0/8'], peer: '10.1.2.3:5000', xff: [], want: '10.1.2.3' },
    { name: 'IPv6 peer and loopback keyword', trusted: ['loopback'], peer: '[::1]:5000', xff: ['2001:db8::7'], want: '2001:db8::7' },
  ];
  test.each(cases)('$name', ({ trusted, peer, xff, want }) => {
    expect(clientAddressResolver(trusted)(peer, forwardedFor(...xff))).toBe(want);
  });
});

/** Logs `usernames` in at once, each call through the "proxy" naming `client`; returns the status codes. */
async function concurrentLogins(server: TestServer, usernames: string[], client: string, password = PASSWORD): Promise<number[]> {
  return Promise.all(
    usernames.map((username) =>
      server.auth.login({ username, password }, { metadata: forwardedFor(client) }).then(
        () => status.OK,
        (err: { code: number }) => err.code,
      ),
    ),
  );
}

describe('behind a trusted proxy', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer({ env: { AUTH_TRUSTED_PROXIES: '127.0.0.1' } });
    await server.auth.register({ username: 'alice', password: PASSWORD });
  });
  afterEach(() => server.close());

  test('the session records the forwarded client address', async () => {
    const tokens = await server.auth.login({ username: 'alice', password: PASSWORD }, { metadata: forwardedFor('203.0.113.9') });
    const { sessions } = await server.account.listSessions({}, bearer(tokens.accessToken));
    expect(sessions.map((s) => s.clientAddress)).toEqual(['203.0.113.9']);
  });

  test('failures from one client behind the proxy do not throttle another client behind it', async () => {
    // 25 guesses at as many names from one client: past the address's 20 free failures.
    const guesses = Array.from({ length: 25 }, (_, i) => `nobody-${i}`);
    expect(await concurrentLogins(server, guesses, '203.0.113.66', 'wrong password, wrong password')).toEqual(Array(25).fill(status.UNAUTHENTICATED));
    expect(await statusOf(server.auth.login({ username: 'alice', password: PASSWORD }, { metadata: forwardedFor('203.0.113.66') }))).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    // Another client behind the same proxy is not held back by it.
    await expect(server.auth.login({ username: 'alice', password: PASSWORD }, { metadata: forwardedFor('203.0.113.9') })).resolves.toMatchObject({ tokenType: 'Bearer' });
  });
});

describe('without trusted proxies', () => {
  test('x-forwarded-for from the peer is ignored: the session records the peer', async () => {
    const server = await startTestServer();
    try {
      await server.auth.register({ username: 'alice', password: PASSWORD });
      const tokens = await server.auth.login({ username: 'alice', password: PASSWORD }, { metadata: forwardedFor('203.0.113.9') });
      const { sessions } = await server.account.listSessions({}, bearer(tokens.accessToken));
      expect(sessions.map((s) => s.clientAddress)).toEqual(['127.0.0.1']);
    } finally {
      await server.close();
    }
  });
});

/** Issue 15, item 3: logins in flight never count against the address they come from. */
function honestLoginsFromOneAddress(env: () => Record<string, string>): void {
  test('50 users logging in at once from one address (a proxy, a NAT) all succeed, and again', async () => {
    const server = await startTestServer({ env: env() });
    try {
      const users = Array.from({ length: 50 }, (_, i) => `user-${i}`);
      for (const username of users) await server.auth.register({ username, password: PASSWORD }, { metadata: forwardedFor('198.51.100.1') });
      for (let round = 0; round < 2; round++) {
        const codes = await concurrentLogins(server, users, '203.0.113.9');
        expect(codes).toEqual(Array(50).fill(status.OK));
      }
    } finally {
      await server.close();
    }
  });
}

describe('one address, memory store', () => honestLoginsFromOneAddress(() => ({ AUTH_TRUSTED_PROXIES: '127.0.0.1' })));
describeWithRedis('one address, Redis store', (redis) => honestLoginsFromOneAddress(() => ({ AUTH_TRUSTED_PROXIES: '127.0.0.1', AUTH_STORE: 'redis', AUTH_REDIS_URL: redis().url })));
