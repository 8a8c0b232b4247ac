import { status } from '@grpc/grpc-js';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { ManualClock } from '../../src/clock';
import { composeService } from '../../src/compose';
import { loadConfig } from '../../src/config';
import { createKeySet, generateEcKey } from '../../src/core/keys';
import type { PasswordHasher } from '../../src/core/password-hasher';
import { createClient } from '../../src/grpc/client';
import { createLogger } from '../../src/logging';
import { PASSWORD, statusOf } from '../helpers/server';

/** A hasher whose verify waits until released, to hold a Login in flight; `entered` says when one is. */
function gatedHasher() {
  let release: () => void = () => {};
  let entered: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  const inVerify = new Promise<void>((resolve) => (entered = resolve));
  const hasher: PasswordHasher = {
    hash: async (p) => `hash:${p}`,
    verify: async (h, p) => {
      entered();
      await gate;
      return h === `hash:${p}`;
    },
    verifyDummy: async () => {},
  };
  return { hasher, release, inVerify };
}

async function start(hasher: PasswordHasher) {
  const clock = new ManualClock(Date.now());
  const app = composeService(loadConfig({}), { clock, hasher, keys: createKeySet([generateEcKey()]), log: createLogger('silent') });
  const running = await app.start('127.0.0.1:0');
  const client = createClient(AuthService, `127.0.0.1:${running.port}`);
  await client.register({ username: 'alice', password: PASSWORD });
  return { running, clock, client, address: `127.0.0.1:${running.port}` };
}

describe('graceful shutdown', () => {
  test('drains an in-flight call, refuses new ones, then resolves', async () => {
    const { hasher, release, inVerify } = gatedHasher();
    const { running, client, address } = await start(hasher);
    const inFlight = client.login({ username: 'alice', password: PASSWORD });
    await inVerify;
    const closed = running.close(5000);
    const late = createClient(AuthService, address);
    expect((await statusOf(late.getJwks({}, { deadline: 2000 }))).code).toBe(status.UNAVAILABLE);
    late.close();
    release();
    await expect(inFlight).resolves.toMatchObject({ tokenType: 'Bearer' });
    await closed;
    client.close();
  });

  test('force-closes calls still running when the grace period has passed on the clock', async () => {
    const { hasher, inVerify } = gatedHasher();
    const { running, clock, client } = await start(hasher);
    const stuck = statusOf(client.login({ username: 'alice', password: PASSWORD }));
    await inVerify;
    let done = false;
    const closed = running.close(300).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    clock.advance(299);
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    clock.advance(1);
    await closed;
    expect((await stuck).code).toBe(status.CANCELLED);
    client.close();
  });
});
