import { Webhook } from 'standardwebhooks';
import { ManualClock } from '../../src/clock';
import { PasswordResetRequests } from '../../src/core/password-reset';
import type { SecondFactors } from '../../src/core/mfa';
import { systemRandom } from '../../src/random';
import { WebhookDelivery } from '../../src/reset-hook';

const SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
const notice = (i: number) => ({ userId: `usr_${i}`, username: `user${i}`, code: `CODE-${i}`, expiresAt: Date.UTC(2030, 0, 1) });

function recordingLog() {
  const events: Array<Record<string, unknown>> = [];
  const push = (fields: Record<string, unknown>) => events.push(fields);
  return { events, log: { info: push, warn: push, error: push }, named: (name: string) => events.filter((e) => e.event === name) };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('the password-reset hook (WebhookDelivery)', () => {
  test('bounded: with the receiver hanging, 4 posts are in flight and 1,000 notices held; the other 1,000 of 2,000 are dropped and audited', async () => {
    const { log, named } = recordingLog();
    let posts = 0;
    const hook = new WebhookDelivery({ url: 'https://hook.test/reset', secret: SECRET, clock: new ManualClock(), random: systemRandom, log, fetch: () => (posts++, new Promise<Response>(() => {})) });
    for (let i = 0; i < 2000; i++) hook.send(notice(i));
    await settle();
    expect(posts).toBe(4);
    expect(hook.held).toBe(1000);
    expect(named('password_reset_hook_dropped')).toHaveLength(1000);
    expect(named('password_reset_hook_dropped')[0]).toMatchObject({ userId: 'usr_1000', why: 'queue_full' });
  });

  test('six tries, waiting 5, 10, 20, 40 and 80 s between them on the clock, then given up (audited); nothing held after', async () => {
    const { log, named } = recordingLog();
    const clock = new ManualClock();
    const tries: number[] = [];
    const hook = new WebhookDelivery({ url: 'https://hook.test/reset', secret: SECRET, clock, random: systemRandom, log, fetch: async () => (tries.push(clock.now()), new Response(null, { status: 500 })) });
    hook.send(notice(1));
    for (let i = 0; i < 10; i++) await settle();
    for (const wait of [5000, 10_000, 20_000, 40_000, 80_000]) {
      clock.advance(wait - 1);
      for (let i = 0; i < 5; i++) await settle();
      const before = tries.length;
      clock.advance(1);
      for (let i = 0; i < 10; i++) await settle();
      expect(tries.length).toBe(before + 1);
    }
    const start = tries[0]!;
    expect(tries.map((t) => t - start)).toEqual([0, 5000, 15_000, 35_000, 75_000, 155_000]);
    expect(named('password_reset_hook_failed')).toEqual([expect.objectContaining({ userId: 'usr_1', tries: 6 })]);
    expect(hook.held).toBe(0);
  });

  test('signed as a Standard Webhook; the code is in the body only, never in a log line', async () => {
    const { events, log } = recordingLog();
    let seen: { headers: Record<string, string>; body: string } | undefined;
    const hook = new WebhookDelivery({
      url: 'https://hook.test/reset',
      secret: SECRET,
      clock: new ManualClock(),
      random: systemRandom,
      log,
      fetch: async (_url, init) => {
        seen = { headers: init!.headers as Record<string, string>, body: String(init!.body) };
        return new Response(null, { status: 204 });
      },
    });
    hook.send(notice(7));
    for (let i = 0; i < 10; i++) await settle();
    // The standardwebhooks verifier checks the timestamp against Date.now: make that the service's clock.
    const now = jest.spyOn(Date, 'now').mockReturnValue(new ManualClock().now());
    try {
      expect(new Webhook(SECRET).verify(seen!.body, seen!.headers)).toEqual({ user_id: 'usr_7', username: 'user7', code: 'CODE-7', expires_at: '2030-01-01T00:00:00.000Z' });
      expect(() => new Webhook(`whsec_${Buffer.alloc(32, 1).toString('base64')}`).verify(seen!.body, seen!.headers)).toThrow('No matching signature found');
    } finally {
      now.mockRestore();
    }
    expect(JSON.stringify(events)).not.toContain('CODE-7');
  });
});

describe('RequestPasswordReset (PasswordResetRequests)', () => {
  test('at most 256 requests worked on at once: with the store hanging, 300 requests answer OK at once, 44 dropped and audited', async () => {
    const { log, named } = recordingLog();
    const requests = new PasswordResetRequests(
      {
        users: { findUserByUsername: () => new Promise(() => {}) },
        rates: { hitRate: async () => ({ allowed: true, retryAfterMs: 0 }) },
        factors: {} as SecondFactors,
        delivery: { send: () => {} },
      },
      { perAddress: { limit: 1000, windowMs: 3_600_000 }, perUserAndAddress: { limit: 1000, windowMs: 3_600_000 }, maxPending: 256 },
    );
    await Promise.all(Array.from({ length: 300 }, (_, i) => requests.request(`user${i}`, { log, clientAddress: '203.0.113.9' })));
    await settle();
    expect(requests.inFlight).toBe(256);
    expect(named('password_reset_dropped')).toHaveLength(44);
    expect(named('password_reset_dropped')[0]).toMatchObject({ why: 'busy' });
  });
});
