import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Metadata, status } from '@grpc/grpc-js';
import { ManualClock } from '../../src/clock';
import { createKeySet, generateEcKey } from '../../src/core/keys';
import { rfc6238 } from '../helpers/rfc6238';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { describeEachStore, memoryStore } from '../helpers/stores';
import { eventually } from '../helpers/wait';

const HOOK_SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;

function from(address: string): { metadata: Metadata } {
  const metadata = new Metadata();
  metadata.set('x-forwarded-for', address);
  return { metadata };
}

/**
 * Second-factor and reset rules whose state lives in the store, on every store, with two
 * instances sharing it (on the memory store: two servers over one store object).
 */
describeEachStore('second factors and resets on two instances', (env, kind) => {
  let hook: Server;
  const received: string[] = [];
  const seen = new Set<string>();
  let a: TestServer;
  let b: TestServer;
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        // A notice sent again (its first answer lost) is one notice: counted once, by its id.
        const id = String(req.headers['webhook-id']);
        if (!seen.has(id)) received.push(body);
        seen.add(id);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/reset`;
    const shared = kind === 'memory' ? { store: memoryStore(clock) } : {};
    // One signing key, as instances behind one load balancer share their key files.
    const options = { clock, keys: createKeySet([generateEcKey()]), env: { ...env(), AUTH_PASSWORD_RESET_HOOK_URL: url, AUTH_PASSWORD_RESET_HOOK_SECRET: HOOK_SECRET, AUTH_TRUSTED_PROXIES: 'loopback' }, ...shared };
    a = await startTestServer(options);
    b = await startTestServer(options);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await new Promise((r) => hook.close(r));
  });

  /**
   * Waits for `count` notices. A request's code is made after its answer (the store read, the
   * throttle and the write run on), and the store's operations are bounded on the service's clock:
   * so the clock stays still until every code is made (moving it sooner times out a slow store
   * write, and its notice is never sent). Then a notice whose POST failed (a loaded machine) is
   * sent again after 5 s of that clock, then 10, 20: the clock moves 250 ms a poll while the test
   * waits (about four minutes of it in 20 s; codes last 15). If they do not come, the failure says
   * what each instance logged of the resets (a request throttled, dropped or a notice given up).
   */
  async function notices(count: number): Promise<void> {
    const logged = () => [a, b].map((s) => s.logs.entries.filter((e) => String(e.event).startsWith('password_reset')));
    try {
      await eventually(() => expect(logged().flat().filter((e) => e.event === 'password_reset_code_created' && e.via === 'hook')).toHaveLength(count), { timeoutMs: 20_000 });
      await eventually(
        () => {
          clock.advance(250);
          expect(received).toHaveLength(count);
        },
        { timeoutMs: 20_000 },
      );
    } catch (err) {
      const [onA, onB] = logged().map((events) => events.map(({ event, why, scope, tries, cause }) => ({ event, why, scope, tries, cause })));
      throw new Error(`${(err as Error).message}\nreset events on a: ${JSON.stringify(onA)}\non b: ${JSON.stringify(onB)}`);
    }
  }

  test('a CompleteLogin refused because the password changed on the other instance spends no code', async () => {
    await a.auth.register({ username: 'fay', password: PASSWORD });
    const first = await a.auth.login({ username: 'fay', password: PASSWORD });
    const enrolled = await b.account.enrollTotp({}, bearer(first.accessToken));
    const { recoveryCodes } = await a.account.confirmTotp({ enrollmentId: enrolled.enrollmentId, code: rfc6238(enrolled.secret, clock.now()), password: PASSWORD }, bearer(first.accessToken));
    const stale = (await a.auth.login({ username: 'fay', password: PASSWORD })).mfaToken;
    await b.account.changePassword({ currentPassword: PASSWORD, newPassword: 'fay has a brand new passphrase' }, bearer(first.accessToken));
    expect(await statusOf(a.auth.completeLogin({ mfaToken: stale, code: recoveryCodes[0]! }))).toEqual({ code: status.UNAUTHENTICATED, details: 'mfa_token is invalid, used or expired; log in again' });
    expect((await b.account.getAccount({}, bearer(first.accessToken))).mfa).toMatchObject({ recoveryCodesLeft: 10 });
    const fresh = (await b.auth.login({ username: 'fay', password: 'fay has a brand new passphrase' })).mfaToken;
    expect(await a.auth.completeLogin({ mfaToken: fresh, code: recoveryCodes[0]! })).toMatchObject({ usedRecoveryCode: true, recoveryCodesLeft: 9 });
  });

  test("requests for a user's reset codes from other addresses, on either instance, never spend the owner's budget nor cancel the owner's or an admin's code", async () => {
    const { userId } = await a.auth.register({ username: 'gus', password: PASSWORD });
    await a.app.store.updateUser((await a.auth.register({ username: 'root', password: PASSWORD })).userId, { roles: ['admin'] });
    const root = bearer((await b.auth.login({ username: 'root', password: PASSWORD })).accessToken);
    received.length = 0;
    // The owner asks first, from an address of their own; an admin also makes a code.
    await a.auth.requestPasswordReset({ username: 'gus' }, from('192.0.2.44'));
    await notices(1);
    const owners = (JSON.parse(received[0]!) as { code: string }).code;
    const admins = (await b.admin.createPasswordResetCode({ userId }, root)).code;
    // Then four addresses ask five times each, spread over both instances: three codes each are sent.
    for (let i = 0; i < 20; i++) await (i % 2 ? a : b).auth.requestPasswordReset({ username: 'gus' }, from(`198.51.100.${i % 4}`));
    await notices(13);
    await new Promise((r) => setTimeout(r, 100));
    expect(received).toHaveLength(13);
    // The owner's code still works, on the other instance; the reset spends every code, the admin's too.
    await b.auth.resetPassword({ username: 'gus', code: owners, newPassword: 'gus has a brand new passphrase', mfaCode: '' });
    expect(await statusOf(a.auth.resetPassword({ username: 'gus', code: admins, newPassword: 'gus has another passphrase', mfaCode: '' }))).toMatchObject({ code: status.UNAUTHENTICATED });
    expect((await a.auth.login({ username: 'gus', password: 'gus has a brand new passphrase' })).accessToken).not.toBe('');
    // An admin's code outlives any number of requests; the document keeps five requesters' codes at most.
    const again = (await a.admin.createPasswordResetCode({ userId }, root)).code;
    for (let i = 0; i < 8; i++) await b.auth.requestPasswordReset({ username: 'gus' }, from(`203.0.113.${i}`));
    await notices(21);
    const doc = JSON.parse((await a.app.store.readUserSecrets(userId))!.data) as { resets: Array<{ from: string }> };
    expect(doc.resets.filter((r) => r.from === 'admin')).toHaveLength(1);
    expect(doc.resets.filter((r) => r.from !== 'admin')).toHaveLength(5);
    await a.auth.resetPassword({ username: 'gus', code: again, newPassword: 'gus has a third passphrase', mfaCode: '' });
  });
});
