import { status } from '@grpc/grpc-js';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { createClient } from '../../src/grpc/client';
import { STORE_CHECK_INTERVAL_MS } from '../../src/run';
import { ManualClock } from '../../src/clock';
import { memoryStore } from '../helpers/stores';
import type { Store } from '../../src/store/store';
import { bearer, PASSWORD, startTestServer, statusOf, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/wait';
import { SoftAuthenticator } from '../helpers/authenticator';

const ORIGIN = 'https://example.test';
/** A response that parses, for a credential nobody has: the store is asked before anything verifies it. */
const UNKNOWN_RESPONSE = JSON.stringify({ id: 'AAAAAAAAAAAAAAAAAAAAAA', rawId: 'AAAAAAAAAAAAAAAAAAAAAA', type: 'public-key', response: {} });

/** Registers a passkey for the session of `accessToken`; returns its id. */
async function withPasskey(s: TestServer, accessToken: string): Promise<string> {
  const started = await s.account.startPasskeyRegistration({}, bearer(accessToken));
  const made = new SoftAuthenticator(ORIGIN).create(started.optionsJson);
  return (await s.account.finishPasskeyRegistration({ ceremonyId: started.ceremonyId, responseJson: made.json, name: '' }, bearer(accessToken))).passkey!.passkeyId;
}

type Mode = 'ok' | 'hang' | 'throw' | 'lose-reply';
type Op = Exclude<keyof Store, 'close' | 'connect'>;

/** A memory store whose chosen operations hang, throw, or do their work and then throw. */
function faultyStore(clock: ManualClock) {
  const inner = memoryStore(clock);
  const faults = new Map<string, Mode>();
  // Resolves when an operation set to hang has been called: the test then moves the clock.
  let hanging: () => void = () => {};
  let hung = new Promise<void>((resolve) => (hanging = resolve));
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const run = () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        switch (faults.get(String(prop)) ?? 'ok') {
          case 'hang':
            hanging();
            return new Promise(() => {});
          case 'throw':
            return Promise.reject(new TypeError('boom: secret detail'));
          case 'lose-reply':
            return run().then(() => Promise.reject(new Error('connection reset after the write')));
          default:
            return run();
        }
      };
    },
  }) as Store;
  return {
    store,
    inner,
    fail: (op: Op, mode: Mode) => {
      hung = new Promise<void>((resolve) => (hanging = resolve));
      faults.set(op, mode);
    },
    heal: () => faults.clear(),
    hung: () => hung,
  };
}

describe('a store that fails inside', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => process.off('unhandledRejection', onUnhandled));

  let faulty: ReturnType<typeof faultyStore>;
  let server: TestServer;
  let tokens: { accessToken: string; refreshToken: string };
  let bobId: string;
  let aliceId: string;
  beforeEach(async () => {
    const clock = new ManualClock();
    faulty = faultyStore(clock);
    server = await startTestServer({ store: faulty.store, clock, env: { AUTH_STORE_TIMEOUT: '1s', AUTH_WEBAUTHN_RP_ID: 'example.test' } });
    // alice is an admin, so every AccountService and AdminService RPC can be driven into the store.
    const { userId } = await server.auth.register({ username: 'alice', password: PASSWORD });
    await faulty.inner.updateUser(userId, { roles: ['admin'] });
    aliceId = userId;
    bobId = (await server.auth.register({ username: 'bob', password: PASSWORD })).userId;
    tokens = await server.auth.login({ username: 'alice', password: PASSWORD });
  });
  afterEach(async () => {
    faulty.heal();
    await server.close();
    expect(unhandled).toEqual([]);
  });

  // Every store operation, the RPCs that use it, for each way of failing.
  const calls: Record<Op, Array<[string, (s: TestServer) => Promise<unknown>]>> = {
    createUser: [['Register', (s) => s.auth.register({ username: 'carol', password: PASSWORD })]],
    findUserByUsername: [
      ['Register', (s) => s.auth.register({ username: 'carol', password: PASSWORD })],
      ['Login', (s) => s.auth.login({ username: 'alice', password: PASSWORD })],
      ['AdminService.GetUser', (s) => s.admin.getUser({ username: 'bob' }, bearer(tokens.accessToken))],
    ],
    getUser: [
      ['AccountService.GetAccount', (s) => s.account.getAccount({}, bearer(tokens.accessToken))],
      ['AdminService.GetUser', (s) => s.admin.getUser({ userId: bobId }, bearer(tokens.accessToken))],
    ],
    listUsers: [['AdminService.ListUsers', (s) => s.admin.listUsers({}, bearer(tokens.accessToken))]],
    updateUser: [
      ['AdminService.SetRoles', (s) => s.admin.setRoles({ userId: bobId, roles: ['ops'] }, bearer(tokens.accessToken))],
      ['AccountService.RevokeOtherSessions', (s) => s.account.revokeOtherSessions({}, bearer(tokens.accessToken))],
    ],
    deleteUser: [['AdminService.DeleteUser', (s) => s.admin.deleteUser({ userId: bobId }, bearer(tokens.accessToken))]],
    listSessions: [['AccountService.ListSessions', (s) => s.account.listSessions({}, bearer(tokens.accessToken))]],
    revokeSession: [['AccountService.RevokeSession', (s) => s.account.revokeSession({ sessionId: 'ses_AAAAAAAAAAAAAAAAAAAAAA' }, bearer(tokens.accessToken))]],
    // Login asks the address inside beginGuardedAttempt; CompleteLogin asks it alone first.
    checkAttempt: [['CompleteLogin', (s) => s.auth.completeLogin({ mfaToken: `mfa_${aliceId}.${'A'.repeat(43)}`, code: '123456' })]],
    recordFailure: [['Login', (s) => s.auth.login({ username: 'alice', password: 'a wrong password, long' })]],
    resetAttempts: [['AdminService.ResetLoginThrottle', (s) => s.admin.resetLoginThrottle({ username: 'bob' }, bearer(tokens.accessToken))]],
    fileUserIds: [],
    // The operators' tools use these, not RPCs (test/process/copy-store.test.ts, test/process/operator-cli.test.ts).
    exportSessions: [],
    readMaintenance: [],
    setMaintenance: [],
    createServiceAccount: [['AdminService.CreateServiceAccount', (s) => s.admin.createServiceAccount({ name: 'reports' }, bearer(tokens.accessToken))]],
    getServiceAccount: [
      ['AdminService.GetServiceAccount', (s) => s.admin.getServiceAccount({ serviceAccountId: 'sva_AAAAAAAAAAAAAAAAAAAAAA' }, bearer(tokens.accessToken))],
      ['IssueServiceToken', (s) => s.auth.issueServiceToken({ clientId: 'sva_AAAAAAAAAAAAAAAAAAAAAA', clientSecret: `svs_${'a'.repeat(43)}` })],
    ],
    listServiceAccounts: [['AdminService.ListServiceAccounts', (s) => s.admin.listServiceAccounts({}, bearer(tokens.accessToken))]],
    updateServiceAccount: [['AdminService.SetServiceAccountRoles', (s) => s.admin.setServiceAccountRoles({ serviceAccountId: 'sva_AAAAAAAAAAAAAAAAAAAAAA', roles: [] }, bearer(tokens.accessToken))]],
    deleteServiceAccount: [['AdminService.DeleteServiceAccount', (s) => s.admin.deleteServiceAccount({ serviceAccountId: 'sva_AAAAAAAAAAAAAAAAAAAAAA' }, bearer(tokens.accessToken))]],
    liveCredential: [],
    hitRate: [['Register', (s) => s.auth.register({ username: 'carol', password: PASSWORD })]],
    useAssertion: [],
    createSession: [['Login', (s) => s.auth.login({ username: 'alice', password: PASSWORD })]],
    rotateRefreshToken: [['Refresh', (s) => s.auth.refresh({ refreshToken: tokens.refreshToken })]],
    revokeSessionByRefreshToken: [['Logout', (s) => s.auth.logout({ refreshToken: tokens.refreshToken })]],
    liveSession: [
      ['Validate', (s) => s.auth.validate({ accessToken: tokens.accessToken })],
      ['WhoAmI', (s) => s.secure.whoAmI({}, bearer(tokens.accessToken))],
    ],
    // Only when the caller's address is unknown; every call here comes over TCP from 127.0.0.1.
    beginAttempt: [],
    beginGuardedAttempt: [['Login', (s) => s.auth.login({ username: 'alice', password: PASSWORD })]],
    endAttempt: [
      ['Login', (s) => s.auth.login({ username: 'alice', password: PASSWORD })],
      ['Login', (s) => s.auth.login({ username: 'alice', password: 'a wrong password, long' })],
    ],
    readUserSecrets: [
      ['Login', (s) => s.auth.login({ username: 'alice', password: PASSWORD })],
      ['AccountService.GetAccount', (s) => s.account.getAccount({}, bearer(tokens.accessToken))],
    ],
    writeUserSecrets: [['AccountService.EnrollTotp', (s) => s.account.enrollTotp({}, bearer(tokens.accessToken))]],
    putCeremony: [
      ['StartPasskeyLogin', (s) => s.auth.startPasskeyLogin({ username: '' })],
      ['AccountService.StartPasskeyRegistration', (s) => s.account.startPasskeyRegistration({}, bearer(tokens.accessToken))],
    ],
    takeCeremony: [['FinishPasskeyLogin', (s) => s.auth.finishPasskeyLogin({ ceremonyId: 'pkc_AAAAAAAAAAAAAAAAAAAAAA', responseJson: UNKNOWN_RESPONSE })]],
    passkeyOwner: [
      [
        'FinishPasskeyLogin',
        async (s) => s.auth.finishPasskeyLogin({ ceremonyId: (await s.auth.startPasskeyLogin({ username: '' })).ceremonyId, responseJson: UNKNOWN_RESPONSE }),
      ],
    ],
    linkPasskey: [['AccountService.FinishPasskeyRegistration', (s) => withPasskey(s, tokens.accessToken)]],
    unlinkPasskey: [['AdminService.DeleteUserPasskey', async (s) => s.admin.deleteUserPasskey({ userId: aliceId, passkeyId: await withPasskey(s, tokens.accessToken) }, bearer(tokens.accessToken))]],
    createApiKey: [['AccountService.CreateApiKey', (s) => s.account.createApiKey({ name: 'ci', roles: [], expiresInSeconds: 60 }, bearer(tokens.accessToken))]],
    listApiKeys: [['AccountService.ListApiKeys', (s) => s.account.listApiKeys({}, bearer(tokens.accessToken))]],
    revokeApiKey: [['AccountService.RevokeApiKey', async (s) => s.account.revokeApiKey({ apiKeyId: (await s.account.createApiKey({ name: 'ci', roles: [], expiresInSeconds: 60 }, bearer(tokens.accessToken))).apiKey!.apiKeyId }, bearer(tokens.accessToken))]],
    getApiKey: [['ExchangeApiKey', (s) => s.auth.exchangeApiKey({ apiKey: `gak_${'A'.repeat(22)}_${'A'.repeat(43)}` })]],
    liveApiKey: [['ExchangeApiKey', async (s) => s.auth.exchangeApiKey({ apiKey: (await s.account.createApiKey({ name: 'ci', roles: [], expiresInSeconds: 60 }, bearer(tokens.accessToken))).secret })]],
    touchApiKey: [['ExchangeApiKey', async (s) => s.auth.exchangeApiKey({ apiKey: (await s.account.createApiKey({ name: 'ci', roles: [], expiresInSeconds: 60 }, bearer(tokens.accessToken))).secret })]],
    ping: [],
  };
  const rows = (Object.entries(calls) as Array<[Op, Array<[string, (s: TestServer) => Promise<unknown>]>]>).flatMap(([op, rpcs]) =>
    rpcs.flatMap(([rpc, call]) => (['hang', 'throw'] as const).map((mode) => ({ op, rpc, call, mode }))),
  );

  test.each(rows)('$op $mode → $rpc fails with UNAVAILABLE at the store timeout', async ({ op, call, mode }) => {
    faulty.fail(op, mode);
    const result = statusOf(call(server));
    if (mode === 'hang') {
      await faulty.hung();
      server.clock.advance(1000);
    }
    expect(await result).toEqual({ code: status.UNAVAILABLE, details: 'session store unavailable' });
    faulty.heal();
    // Nothing was half-written: the session still works as before.
    expect((await server.auth.validate({ accessToken: tokens.accessToken })).active).toBe(true);
    await expect(server.auth.refresh({ refreshToken: tokens.refreshToken })).resolves.toBeDefined();
    const failure = server.logs.entries.find((e) => e.msg === 'call failed: unavailable');
    expect(failure).toMatchObject({ level: 'warn', cause: { type: mode === 'throw' ? 'TypeError' : 'Error' } });
    expect(server.logs.text).not.toContain('"stack"');
  });

  test('a rotation whose reply is lost: the retry gets the successor the store kept, not a revocation', async () => {
    faulty.fail('rotateRefreshToken', 'lose-reply');
    expect((await statusOf(server.auth.refresh({ refreshToken: tokens.refreshToken }))).code).toBe(status.UNAVAILABLE);
    faulty.heal();
    const retried = await server.auth.refresh({ refreshToken: tokens.refreshToken });
    await expect(server.auth.refresh({ refreshToken: retried.refreshToken })).resolves.toBeDefined();
  });

  test('ping failing turns health NOT_SERVING at the next check, and back when it answers', async () => {
    const health = createClient(Health, server.address);
    try {
      faulty.fail('ping', 'throw');
      expect((await health.check({ service: '' })).status).toBe(ServingStatus.SERVING);
      server.clock.advance(STORE_CHECK_INTERVAL_MS);
      await eventually(async () => (await health.check({ service: '' })).status === ServingStatus.NOT_SERVING);
      faulty.heal();
      server.clock.advance(STORE_CHECK_INTERVAL_MS);
      await eventually(async () => (await health.check({ service: '' })).status === ServingStatus.SERVING);
    } finally {
      health.close();
    }
  });
});
