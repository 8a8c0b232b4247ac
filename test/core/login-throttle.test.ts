import fc from 'fast-check';
import { create, toBinary } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { LoginRequestSchema } from '../../gen/auth/v1/auth_pb';
import { ManualClock } from '../../src/clock';
import { ConcurrencyLimiter } from '../../src/core/limiter';
import { silentLog } from '../../src/core/events';
import { accountKey, ACCOUNT_POLICY, ADDRESS_POLICY, addressKey, backoffDelay, LoginThrottle } from '../../src/core/login-throttle';
import { memoryStore } from '../helpers/stores';
import type { PasswordHasher } from '../../src/core/password-hasher';
import { bearer, fastHasher, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/wait';

describe('backoffDelay', () => {
  test.each([
    { failures: 0, want: 0 },
    { failures: 4, want: 0 },
    { failures: 5, want: 1000 },
    { failures: 6, want: 2000 },
    { failures: 10, want: 32_000 },
    { failures: 15, want: 15 * 60_000 },
    { failures: 99, want: 15 * 60_000 },
    { failures: 100, want: 24 * 3_600_000 },
  ])('account: $failures failures → wait $want ms', ({ failures, want }) => expect(backoffDelay(failures, ACCOUNT_POLICY)).toBe(want));

  test('a client address gets 20 free failures', () => {
    expect(backoffDelay(19, ADDRESS_POLICY)).toBe(0);
    expect(backoffDelay(20, ADDRESS_POLICY)).toBe(1000);
  });
});

describe('login throttling over gRPC', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer();
    await server.auth.register({ username: 'alice', password: PASSWORD });
  });
  afterEach(() => server.close());

  const attempt = (username: string, password: string) =>
    server.auth.login({ username, password }).then(
      () => 'OK',
      (err: { code: number; details: string }) => `${status[err.code]}: ${err.details}`,
    );

  /** The outcomes of a fixed script of attempts against one username. */
  async function script(username: string): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < 5; i++) out.push(await attempt(username, 'wrong password number one'));
    out.push(await attempt(username, 'wrong password number one'));
    server.clock.advance(1000);
    out.push(await attempt(username, 'wrong password number one'));
    out.push(await attempt(username, 'wrong password number one'));
    server.clock.advance(2000);
    out.push(await attempt(username, 'wrong password number one'));
    return out;
  }

  test('back-off grows after five failures; an unknown username is throttled exactly like a real one', async () => {
    const known = await script('alice');
    expect(known).toEqual([
      ...Array(5).fill('UNAUTHENTICATED: invalid username or password'),
      'RESOURCE_EXHAUSTED: too many failed logins; retry in 1 s',
      'UNAUTHENTICATED: invalid username or password',
      'RESOURCE_EXHAUSTED: too many failed logins; retry in 2 s',
      'UNAUTHENTICATED: invalid username or password',
    ]);
    expect(await script('nobody-here')).toEqual(known);
  });

  test('the wait is in the retry-after trailer too', async () => {
    for (let i = 0; i < 5; i++) await attempt('alice', 'wrong password number one');
    const trailer = await new Promise<string>((resolve) => {
      const request = Buffer.from(toBinary(LoginRequestSchema, create(LoginRequestSchema, { username: 'alice', password: PASSWORD })));
      const call = server.auth.grpcClient.makeUnaryRequest('/auth.v1.AuthService/Login', (b: Buffer) => b, (b: Buffer) => b, request, () => {});
      call.on('status', (s) => resolve(String(s.metadata.get('retry-after')[0])));
    });
    expect(trailer).toBe('1');
  });

  test('the right password waits for the back-off too, then resets the count', async () => {
    for (let i = 0; i < 5; i++) await attempt('alice', 'wrong password number one');
    // A refused attempt is not a failure: it does not lengthen the wait.
    expect(await attempt('alice', 'wrong password number one')).toBe('RESOURCE_EXHAUSTED: too many failed logins; retry in 1 s');
    expect(await attempt('alice', PASSWORD)).toBe('RESOURCE_EXHAUSTED: too many failed logins; retry in 1 s');
    server.clock.advance(1000);
    expect(await attempt('alice', PASSWORD)).toBe('OK');
    expect(await attempt('alice', 'wrong password number one')).toBe('UNAUTHENTICATED: invalid username or password');
    expect(await attempt('alice', PASSWORD)).toBe('OK');
  });

  test('a burst of parallel guesses is throttled like a sequence: five get through, no more', async () => {
    const outcomes = await Promise.all(Array.from({ length: 40 }, () => attempt('alice', 'wrong password number one')));
    expect(outcomes.filter((o) => o.startsWith('UNAUTHENTICATED'))).toHaveLength(5);
    expect(outcomes.filter((o) => o.startsWith('RESOURCE_EXHAUSTED'))).toHaveLength(35);
    // The refused 35 were not counted: the wait is the one five failures earn.
    server.clock.advance(1000);
    expect(await attempt('alice', PASSWORD)).toBe('OK');
  });

  test('one client address guessing across many accounts is throttled after 20 failures', async () => {
    for (let i = 0; i < 20; i++) expect(await attempt(`user${i}`, 'wrong password number one')).toMatch(/^UNAUTHENTICATED/);
    expect(await attempt('alice', PASSWORD)).toBe('RESOURCE_EXHAUSTED: too many failed logins; retry in 1 s');
  });

  test('empty fields are INVALID_ARGUMENT and never counted', async () => {
    for (let i = 0; i < 10; i++) expect((await statusOf(server.auth.login({ username: 'alice', password: '' }))).code).toBe(status.INVALID_ARGUMENT);
    expect(await attempt('alice', PASSWORD)).toBe('OK');
  });
});

describe('LoginThrottle limits', () => {
  test('after 100 consecutive failures an account takes no guesses until its count expires (NIST SP 800-63B 5.2.2)', async () => {
    const clock = new ManualClock();
    const throttle = new LoginThrottle(memoryStore(clock));
    const ctx = { log: silentLog };
    for (let i = 0; i < 100; i++) {
      await (await throttle.begin('alice', ctx)).failed();
      clock.advance(15 * 60_000);
    }
    clock.advance(-15 * 60_000);
    await expect(throttle.begin('alice', ctx)).rejects.toMatchObject({ code: 'throttled', retryAfterSeconds: 86_400 });
    clock.advance(24 * 3_600_000);
    await expect(throttle.begin('alice', ctx)).resolves.toBeDefined();
  });

  test('an account key is a fixed-size digest whatever the name; an IPv6 address counts by its /64', () => {
    expect(accountKey('alice')).toMatch(/^acct:[A-Za-z0-9_-]{22}$/);
    expect(accountKey('\ufdfa'.repeat(200).normalize('NFKC'))).toMatch(/^acct:[A-Za-z0-9_-]{22}$/);
    expect(addressKey('203.0.113.7')).toBe('addr:203.0.113.7');
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe(addressKey('2001:db8:1:2:ffff::1'));
    expect(addressKey('2001:db8::1')).toBe('addr:2001:db8:0:0::/64');
    expect(addressKey('2001:db8:0:1::1')).not.toBe(addressKey('2001:db8::1'));
    expect(addressKey('::ffff:203.0.113.7')).toBe('addr:203.0.113.7');
    // Without a colon nothing is IPv6; every IPv6 address, however written, counts by its /64.
    fc.assert(fc.property(fc.string().filter((a) => !a.includes(':')), (a) => addressKey(a) === `addr:${a}`));
    fc.assert(fc.property(fc.ipV6().filter((a) => !/^::ffff:\d/i.test(a)), (a) => /^addr:[0-9a-f]{1,4}(:[0-9a-f]{1,4}){3}::\/64$/.test(addressKey(a))), { numRuns: 1000 });
  });
});

describe('hashing concurrency', () => {
  test('with every hashing slot busy and logins queued, Validate and the interceptor still answer', async () => {
    const fast = fastHasher();
    let open = true;
    const gate: Array<() => void> = [];
    const hasher: PasswordHasher = {
      hash: (p) => fast.hash(p),
      verify: async (h, p) => {
        if (!open) await new Promise<void>((r) => gate.push(r));
        return fast.verify(h, p);
      },
      verifyDummy: async () => {
        await new Promise<void>((r) => gate.push(r));
      },
    };
    const server = await startTestServer({ hasher });
    try {
      await server.auth.register({ username: 'alice', password: PASSWORD });
      const { accessToken } = await server.auth.login({ username: 'alice', password: PASSWORD });
      open = false;
      const flood = Array.from({ length: 50 }, (_, i) => server.auth.login({ username: `u${i}`, password: PASSWORD }).catch(() => {}));
      await eventually(() => gate.length > 0);
      expect((await server.auth.validate({ accessToken })).active).toBe(true);
      await expect(server.secure.whoAmI({}, bearer(accessToken))).resolves.toMatchObject({ username: 'alice' });
      gate.splice(0).forEach((r) => r());
      open = true;
      await Promise.all(flood);
    } finally {
      await server.close();
    }
  });

  test('never more than the limit at once; a full queue is refused as overloaded', async () => {
    const limiter = new ConcurrencyLimiter(2, 3);
    let running = 0;
    let peak = 0;
    const release: Array<() => void> = [];
    const task = () =>
      limiter.run(async () => {
        peak = Math.max(peak, ++running);
        await new Promise<void>((r) => release.push(r));
        running--;
      });
    const accepted = Array.from({ length: 5 }, task);
    await expect(task()).rejects.toMatchObject({ code: 'overloaded' });
    while (release.length > 0 || limiter.pending > 0) {
      release.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(accepted);
    expect(peak).toBe(2);
  });
});
