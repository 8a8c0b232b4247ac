import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/store/redis/redis-store';
import { describeNeeding } from '../helpers/requires';
import { startRedis, type TestRedis } from '../helpers/redis';
import { eventually } from '../helpers/wait';

/*
 * The Redis side of test/faults/postgres-late-writes.test.ts: a command that timed out is still
 * sent (ioredis), and a stopped Redis (SIGSTOP) runs it when it wakes, after its caller was told
 * UNAVAILABLE. Each script below checks the deadline the caller gave it (CLOCK's late()) and does
 * nothing, so the client's retry is the only attempt that counts.
 */

const COMMAND_TIMEOUT_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const id = (prefix: string) => `${prefix}_${randomBytes(16).toString('base64url')}`;
const name = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;
const newUser = (username: string) => ({ id: id('usr'), username, passwordHash: '$argon2id$x', roles: ['user'], disabled: false, origin: 'api' as const });
const newApiKey = (ownerId: string) => ({ id: id('apk'), ownerId, name: 'k', roles: ['user'], hash: 'h', createdAt: Date.now(), expiresAt: Date.now() + 3_600_000, ownerGeneration: 0 });
const newAccount = (accountName: string) => ({ id: id('sva'), name: accountName, roles: ['reader'], credential: { type: 'secret' as const, id: id('sec'), hash: 'h' } });

describeNeeding(['redis-server'], 'Redis: no write lands after its caller was told UNAVAILABLE', () => {
  let redis: TestRedis;
  let store: RedisStore;
  beforeAll(async () => {
    redis = await startRedis();
    store = new RedisStore({ connection: { kind: 'single', url: redis.url }, keyPrefix: 'late:', commandTimeoutMs: COMMAND_TIMEOUT_MS, accessGraceMs: 60_000, maxSessionsPerUser: 10 });
    await store.connect();
  });
  afterAll(async () => {
    redis.process.kill('SIGCONT');
    raw?.disconnect();
    await store.close();
    await redis.stop();
  });
  let raw: Redis;
  beforeAll(() => {
    raw = new Redis(redis.url);
  });

  /**
   * Runs `write` against a stopped Redis: it must fail UNAVAILABLE. Redis stays stopped past the
   * command's deadline, then wakes and runs what it was sent.
   */
  async function whileStopped(write: () => Promise<unknown>, stopNow = true): Promise<void> {
    await store.ping(); // a fresh reading of Redis's clock, as the health check keeps one
    if (stopNow) redis.process.kill('SIGSTOP');
    try {
      await expect(write()).rejects.toMatchObject({ code: 'unavailable' });
      await sleep(600); // past the deadline (the command timeout and the clocks' slack)
    } finally {
      redis.process.kill('SIGCONT');
    }
    await eventually(() => store.ping(), { intervalMs: 50 });
  }

  /**
   * As whileStopped, but Redis stops just as the `nth` call of the client's `command` is sent: the
   * steps before it ran. Only the store's calls count: with auto-pipelining, ioredis calls a
   * script's command again on the pipeline it copied it to.
   */
  async function stoppedAt(command: string, write: () => Promise<unknown>, nth = 1): Promise<void> {
    const client = store.client as unknown as Record<string, (...args: unknown[]) => unknown>;
    const original = client[command]!;
    // ioredis defines a script's command on the client itself: put back exactly what was there.
    const own = Object.prototype.hasOwnProperty.call(client, command);
    const restore = () => {
      if (own) client[command] = original;
      else delete client[command];
    };
    let calls = 0;
    client[command] = function (this: unknown, ...args: unknown[]) {
      if (this === client && ++calls === nth) {
        restore();
        redis.process.kill('SIGSTOP');
      }
      return original.apply(this, args);
    };
    try {
      await whileStopped(write, false);
    } finally {
      restore();
    }
    expect(calls).toBe(nth);
  }

  test.each([
    {
      name: 'a registration: the user record sent to a stopped Redis',
      async run() {
        const user = newUser(name('reg'));
        await whileStopped(() => store.createUser(user));
        // Had it landed, the same user's retry would find its id taken.
        expect(await store.createUser(user)).toBe('created');
        expect((await store.findUserByUsername(user.username))?.id).toBe(user.id);
      },
    },
    {
      name: 'a registration whose name claim (what makes the user visible) reaches a stopped Redis: the record goes too',
      async run() {
        const user = newUser(name('claim'));
        await stoppedAt('authClaimName', () => store.createUser(user));
        expect(await store.findUserByUsername(user.username)).toBeUndefined();
        expect(await store.getUser(user.id)).toBeUndefined();
        // A retry with a new id (Register) gets the name; so does one with the same id (a users
        // file's next seeding), which would otherwise find its record there with no name.
        expect(await store.createUser(user)).toBe('created');
        expect((await store.findUserByUsername(user.username))?.id).toBe(user.id);
      },
    },
    {
      name: "a registration whose claim of the name's look (its skeleton) reaches a stopped Redis: the name it holds is given back",
      async run() {
        const user = newUser(name('look'));
        const skeleton = `sk-${user.username}`;
        await stoppedAt('authClaimName', () => store.createUser(user, { skeleton }), 2);
        expect(await store.findUserByUsername(user.username)).toBeUndefined();
        const retry = newUser(user.username);
        expect(await store.createUser(retry, { skeleton })).toBe('created');
        expect(await raw.get(`late:k:{${skeleton}}`)).toBe(retry.id);
      },
    },
    {
      name: 'a registration whose listing entry reaches a stopped Redis (after the claims of its name and look): undone',
      async run() {
        const user = newUser(name('list'));
        const skeleton = `sk-${user.username}`;
        await stoppedAt('zadd', () => store.createUser(user, { skeleton }));
        expect(await store.findUserByUsername(user.username)).toBeUndefined();
        expect(await raw.get(`late:k:{${skeleton}}`)).toBeNull();
        expect(await raw.zscore('late:users', `${user.username}\u0000${user.id}`)).toBeNull();
        const retry = newUser(user.username);
        expect(await store.createUser(retry, { skeleton })).toBe('created');
        expect((await store.listUsers({ prefix: user.username, after: undefined, limit: 10 })).map((u) => u.id)).toEqual([retry.id]);
      },
    },
    {
      name: "an admin's registration whose admin-set entry reaches a stopped Redis: kept, never undone (the set must not count an admin whose record is gone)",
      async run() {
        const admin = { ...newUser(name('adm')), roles: ['admin'] };
        await stoppedAt('sadd', () => store.createUser(admin));
        // Register's "unknown: the user may exist": here it does, whole, and the set counts a real admin.
        expect((await store.findUserByUsername(admin.username))?.id).toBe(admin.id);
        expect(await raw.sismember('late:{admins}:set', admin.id)).toBe(1);
        expect(await store.createUser({ ...newUser(admin.username), roles: ['admin'] })).toBe('exists');
      },
    },
    {
      name: "a users file's user whose record is there without its name (a creation cut short inside its deadline's slack): the next seeding finishes it",
      async run() {
        const user = { ...newUser(name('file')), origin: 'file' as const };
        expect(await store.createUser(user)).toBe('created');
        await raw.del(`late:n:{${user.username}}`);
        await raw.zrem('late:users', `${user.username}\u0000${user.id}`);
        expect(await store.findUserByUsername(user.username)).toBeUndefined();
        expect(await store.createUser(user)).toBe('created');
        expect((await store.findUserByUsername(user.username))?.id).toBe(user.id);
        expect((await store.listUsers({ prefix: user.username, after: undefined, limit: 10 })).map((u) => u.id)).toEqual([user.id]);
        // A user that holds its name is still one that exists.
        expect(await store.createUser(user)).toBe('exists');
      },
    },
    {
      name: 'a service account: its record sent to a stopped Redis',
      async run() {
        const account = newAccount(name('svc'));
        await whileStopped(() => store.createServiceAccount(account));
        expect(await store.createServiceAccount(account)).toBe('created');
      },
    },
    {
      name: "a service account whose name claim reaches a stopped Redis",
      async run() {
        const account = newAccount(name('svc-claim'));
        await stoppedAt('authClaimName', () => store.createServiceAccount(account));
        expect(await store.getServiceAccount(account.id)).toBeUndefined();
        expect(await store.createServiceAccount(newAccount(account.name))).toBe('created');
      },
    },
    {
      name: 'a service account deleted',
      async run() {
        const account = newAccount(name('svc-del'));
        await store.createServiceAccount(account);
        await stoppedAt('authDeleteOnTime', () => store.deleteServiceAccount(account.id));
        expect((await store.getServiceAccount(account.id))?.name).toBe(account.name);
        expect(await store.deleteServiceAccount(account.id)).toBe(true);
        expect(await store.getServiceAccount(account.id)).toBeUndefined();
      },
    },
    {
      name: "an API key whose place among its owner's keys reaches a stopped Redis: the key goes too",
      async run() {
        const owner = newUser(name('keys'));
        await store.createUser(owner);
        const key = newApiKey(owner.id);
        await stoppedAt('authClaimApiKey', () => store.createApiKey(key, 2));
        expect(await store.getApiKey(key.id)).toBeUndefined();
        // Its place is free: the owner's two keys fit.
        expect(await store.createApiKey(newApiKey(owner.id), 2)).toBe('created');
        expect(await store.createApiKey(newApiKey(owner.id), 2)).toBe('created');
        expect(await store.listApiKeys(owner.id)).toHaveLength(2);
      },
    },
    {
      name: 'an API key revoked',
      async run() {
        const owner = newUser(name('revoke'));
        await store.createUser(owner);
        const key = newApiKey(owner.id);
        await store.createApiKey(key, 2);
        await stoppedAt('authDeleteOnTime', () => store.revokeApiKey(owner.id, key.id));
        expect((await store.getApiKey(key.id))?.id).toBe(key.id);
        expect(await store.revokeApiKey(owner.id, key.id)).toBe(true);
        expect(await store.getApiKey(key.id)).toBeUndefined();
      },
    },
    {
      name: "a successful login's attempt cleared: the entry stays as it was, its failures and the attempt in flight",
      async run() {
        const key = `acct:${randomBytes(4).toString('hex')}`;
        const policy = { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 60_000, maxFailures: 100, windowMs: 3_600_000, shortWindowMs: 60_000, inFlightLeaseMs: 60_000 };
        await store.recordFailure(key, policy);
        await store.beginAttempt(key, policy);
        await whileStopped(() => store.endAttempt(key, policy, 'succeeded'));
        expect(await raw.hmget(`late:a:{${key}}`, 'f', 'i')).toEqual(['1', '1']);
        await store.endAttempt(key, policy, 'succeeded');
        expect(await raw.exists(`late:a:{${key}}`)).toBe(0);
      },
    },
    {
      name: 'a user deleted',
      async run() {
        const user = newUser(name('del'));
        await store.createUser(user);
        await stoppedAt('authDeleteUser', () => store.deleteUser(user.id));
        expect((await store.getUser(user.id))?.username).toBe(user.username);
        expect((await store.deleteUser(user.id)) as { id: string } | undefined).toMatchObject({ id: user.id });
        expect(await store.getUser(user.id)).toBeUndefined();
      },
    },
    {
      name: "a service account's assertion id",
      async run() {
        const account = newAccount(name('jwt'));
        await store.createServiceAccount(account);
        const jti = randomBytes(8).toString('hex');
        await whileStopped(() => store.useAssertion(account.id, jti, Date.now() + 60_000));
        // The client's retry of the same assertion is not taken for a replay; a second use is.
        expect(await store.useAssertion(account.id, jti, Date.now() + 60_000)).toBe(true);
        expect(await store.useAssertion(account.id, jti, Date.now() + 60_000)).toBe(false);
      },
    },
    {
      name: 'a passkey ceremony taken',
      async run() {
        const ceremony = id('pkc');
        await store.putCeremony(ceremony, '{"challenge":"c"}', 60_000);
        await whileStopped(() => store.takeCeremony(ceremony));
        expect(await store.takeCeremony(ceremony)).toBe('{"challenge":"c"}');
        expect(await store.takeCeremony(ceremony)).toBeUndefined();
      },
    },
    {
      name: 'a passkey linked',
      async run() {
        const credential = id('cred');
        const user = id('usr');
        await whileStopped(() => store.linkPasskey(credential, user));
        expect(await store.passkeyOwner(credential)).toBeUndefined();
        expect(await store.linkPasskey(credential, user)).toBe('linked');
        expect(await store.passkeyOwner(credential)).toBe(user);
      },
    },
    {
      name: 'a passkey unlinked',
      async run() {
        const credential = id('cred');
        const user = id('usr');
        await store.linkPasskey(credential, user);
        await whileStopped(() => store.unlinkPasskey(credential, user));
        expect(await store.passkeyOwner(credential)).toBe(user);
        await store.unlinkPasskey(credential, user);
        expect(await store.passkeyOwner(credential)).toBeUndefined();
      },
    },
  ])('$name', async ({ run }) => run(), 30_000);

  test('a username that is the word "late" is deleted like any other (the late answer is not a name)', async () => {
    const user = newUser('late');
    expect(await store.createUser(user)).toBe('created');
    expect((await store.deleteUser(user.id)) as { id: string } | undefined).toMatchObject({ id: user.id });
  });
});
