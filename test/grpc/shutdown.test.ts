import { status } from '@grpc/grpc-js';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { composeService } from '../../src/compose';
import { loadConfig } from '../../src/config';
import { createKeySet, generateEcKey } from '../../src/core/keys';
import type { PasswordHasher } from '../../src/core/password-hasher';
import { createUnaryClient } from '../../src/grpc/client';
import { createLogger } from '../../src/logging';
import { PASSWORD, statusOf } from '../helpers/server';

/** A hasher whose verify waits until released, to hold a Login in flight. */
function gatedHasher() {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  const hasher: PasswordHasher = {
    hash: async (p) => `hash:${p}`,
    verify: async (h, p) => {
      await gate;
      return h === `hash:${p}`;
    },
    verifyDummy: async () => {},
  };
  return { hasher, release };
}

async function start(hasher: PasswordHasher) {
  const app = composeService(loadConfig({}), { hasher, keys: createKeySet([generateEcKey()]), log: createLogger('silent') });
  const port = await app.listen('127.0.0.1:0');
  const client = createUnaryClient(AuthService, `127.0.0.1:${port}`);
  await client.register({ username: 'alice', password: PASSWORD });
  return { app, client, address: `127.0.0.1:${port}` };
}

describe('graceful shutdown', () => {
  test('drains an in-flight call, refuses new ones, then resolves', async () => {
    const { hasher, release } = gatedHasher();
    const { app, client, address } = await start(hasher);
    const inFlight = client.login({ username: 'alice', password: PASSWORD });
    await new Promise((r) => setTimeout(r, 50));
    const closed = app.close(5000);
    const late = createUnaryClient(AuthService, address);
    expect((await statusOf(late.getJwks({}, { deadline: 2000 }))).code).toBe(status.UNAVAILABLE);
    late.close();
    release();
    await expect(inFlight).resolves.toMatchObject({ tokenType: 'Bearer' });
    await closed;
    client.close();
  });

  test('force-closes calls still running after the grace period', async () => {
    const { hasher } = gatedHasher();
    const { app, client } = await start(hasher);
    const stuck = statusOf(client.login({ username: 'alice', password: PASSWORD }));
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await app.close(300);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect((await stuck).code).toBe(status.CANCELLED);
    client.close();
  });
});
