import { status } from '@grpc/grpc-js';
import { generateEcPem } from '../../src/core/keys';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthService } from '../../gen/auth/v1/auth_pb';
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from '../../gen/grpc/health/v1/health_pb';
import { createClient } from '../../src/grpc/client';
import { describeWithPostgres } from '../helpers/postgres';
import { startProcess, type Running } from '../helpers/process';
import { PASSWORD } from '../helpers/server';
import { eventually } from '../helpers/wait';

/** Real service processes on a real PostgreSQL that is killed and restarted under them. */
describeWithPostgres('PostgreSQL faults', (pg) => {
  const running: Running[] = [];
  let env: Record<string, string>;
  const start = async () => {
    const instance = await startProcess(env);
    running.push(instance);
    return { instance, auth: createClient(AuthService, String(instance.started.address)) };
  };

  beforeAll(async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'auth-pgfault-')), 'signing.pem');
    writeFileSync(keyFile, generateEcPem());
    env = { AUTH_DATABASE_URL: await pg().createDatabase(), AUTH_SIGNING_KEY_FILE: keyFile, AUTH_LOG_LEVEL: 'info', AUTH_DATABASE_STATEMENT_TIMEOUT_MS: '300', AUTH_STORE_TIMEOUT: '2s', AUTH_REGISTER_PER_ADDRESS: '1000000', AUTH_REGISTER_PER_MINUTE: '1000000' };
  });
  afterAll(async () => {
    for (const r of running) r.child.kill('SIGKILL');
    await Promise.all(running.map((r) => r.exit));
  });

  test('the service killed with SIGKILL in the middle of refreshes: every session refreshes on another instance, none is lost', async () => {
    const a = await start();
    const b = await start();
    await a.auth.register({ username: 'kim', password: PASSWORD });
    const sessions = [];
    // One after the other: logins in parallel are throttled like a sequence of guesses.
    for (let i = 0; i < 20; i++) sessions.push(await b.auth.login({ username: 'kim', password: PASSWORD }));
    // Twenty refreshes in flight on A, and A dies under them: some rotated, some not, none answered.
    const inFlight = sessions.map((s) => a.auth.refresh({ refreshToken: s.refreshToken }).then(() => 'answered', (e: { code: number }) => e.code));
    setImmediate(() => a.instance.child.kill('SIGKILL'));
    const outcomes = await Promise.all(inFlight);
    for (const o of outcomes) expect(['answered', status.UNAVAILABLE, status.CANCELLED, status.INTERNAL]).toContain(o);
    // The client retries the token it holds on B (within the reuse interval): a rotation A made is
    // handed back, one it did not make is made now; either way the successor works.
    for (const s of sessions) {
      const retried = await b.auth.refresh({ refreshToken: s.refreshToken });
      await expect(b.auth.refresh({ refreshToken: retried.refreshToken })).resolves.toMatchObject({ tokenType: 'Bearer' });
    }
    // And A, started again, knows them all.
    const again = await start();
    for (const s of sessions) expect((await again.auth.validate({ accessToken: s.accessToken })).active).toBe(true);
  }, 60_000);

  test('PostgreSQL restarted under load: only UNAVAILABLE, recovery by itself, 0 sessions and 0 acknowledged users lost', async () => {
    const instances = [await start(), await start()];
    const acknowledged: string[] = [];
    const chains = new Map<number, string>();
    const errors = new Map<string, number>();
    const fail = (e: { code?: number; details?: string }) => {
      const key = `${e.code} ${e.details}`;
      errors.set(key, (errors.get(key) ?? 0) + 1);
    };
    // One session per worker: a client uses its refresh token from one place at a time.
    for (let i = 0; i < 8; i++) {
      await instances[i % 2]!.auth.register({ username: `chain${i}`, password: PASSWORD });
      chains.set(i, (await instances[i % 2]!.auth.login({ username: `chain${i}`, password: PASSWORD })).refreshToken);
    }
    let stop = false;
    let n = 0;
    // Half the workers register, half refresh, each without a pause: a worker that took turns
    // sat in a Register's hash most of the time (the hashes run below other busy processes'
    // priority), so with the cores busy no call at all might reach the store while it was down.
    const worker = async (w: number) => {
      while (!stop) {
        const instance = instances[w % 2]!;
        const i = n++;
        if (w % 2 === 0) {
          const username = `load${i}`;
          await instance.auth.register({ username, password: PASSWORD }).then(() => acknowledged.push(username), fail);
        } else {
          // A refresh that fails is retried with the same token later, as a client would.
          const chain = w;
          await instance.auth.refresh({ refreshToken: chains.get(chain)! }).then((t) => chains.set(chain, t.refreshToken), fail);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, 500));
    const before = acknowledged.length;
    await pg().stop();
    // Health says so within the check interval (a second), on every instance.
    for (const instance of instances) {
      const health = createClient(Health, String(instance.instance.started.address));
      await eventually(async () => (await health.check({ service: '' })).status === ServingStatus.NOT_SERVING, { timeoutMs: 3000, intervalMs: 100 });
      health.close();
    }
    const restartedAt = Date.now();
    await pg().start();
    // Recovered: a call succeeds on each instance again.
    await eventually(async () => {
      for (const instance of instances) await instance.auth.register({ username: `probe${Date.now()}${Math.random()}`.replace('.', ''), password: PASSWORD });
      return true;
    }, { timeoutMs: 20_000, intervalMs: 50 });
    const recoveryMs = Date.now() - restartedAt;
    for (const instance of instances) {
      const health = createClient(Health, String(instance.instance.started.address));
      await eventually(async () => (await health.check({ service: '' })).status === ServingStatus.SERVING, { timeoutMs: 3000, intervalMs: 100 });
      health.close();
    }
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(workers);
    // eslint-disable-next-line no-console
    console.log(`PostgreSQL restart: ${acknowledged.length} users acknowledged (${before} before the stop), errors ${JSON.stringify(Object.fromEntries(errors))}, recovered ${recoveryMs} ms after PostgreSQL started`);
    for (const key of errors.keys()) expect(key.startsWith(`${status.UNAVAILABLE} `)).toBe(true);
    expect(errors.size).toBeGreaterThan(0);
    // Every acknowledged user is there; every session's latest token (or, when its last refresh
    // failed, the one before it, retried within the reuse interval) still refreshes.
    for (const username of acknowledged) await expect(instances[0]!.auth.login({ username, password: PASSWORD })).resolves.toMatchObject({ tokenType: 'Bearer' });
    for (const [, token] of chains) await expect(instances[1]!.auth.refresh({ refreshToken: token })).resolves.toMatchObject({ tokenType: 'Bearer' });
  }, 90_000);
});
