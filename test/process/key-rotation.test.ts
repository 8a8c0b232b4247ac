import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { AuthService, InactiveReason } from '../../gen/auth/v1/auth_pb';
import { createClient, type Client } from '../../src/grpc/client';
import { ManualClock } from '../../src/clock';
import { generateEcPem, loadEcKeyFile } from '../../src/core/keys';
import { memoryStore } from '../helpers/stores';
import { PASSWORD, startTestServer } from '../helpers/server';
import { startProcess, type Running } from '../helpers/process';
import { eventually } from '../helpers/wait';

describe('signing-key rotation, step by step (as the README describes it)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-rotation-'));
  const oldKey = join(dir, 'old.pem');
  const newKey = join(dir, 'new.pem');
  writeFileSync(oldKey, generateEcPem());
  writeFileSync(newKey, generateEcPem());
  const kid = (file: string) => loadEcKeyFile(file).kid;
  // One store and one clock for every phase: only the key list changes, as on a rolling restart.
  const clock = new ManualClock();
  const store = memoryStore(clock);
  const phase = (files: string[]) => startTestServer({ env: { AUTH_SIGNING_KEY_FILE: files.join(',') }, store, clock });
  const kidOf = (token: string) => jwt.decode(token, { complete: true })!.header.kid;

  test('publish, sign with the new key, retire the old one', async () => {
    const before = await phase([oldKey]);
    await before.auth.register({ username: 'alice', password: PASSWORD });
    const oldToken = (await before.auth.login({ username: 'alice', password: PASSWORD })).accessToken;
    expect(kidOf(oldToken)).toBe(kid(oldKey));
    await before.close();

    const published = await phase([oldKey, newKey]);
    const jwks = JSON.parse((await published.auth.getJwks({})).jwksJson) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toEqual([kid(oldKey), kid(newKey)]);
    expect(kidOf((await published.auth.login({ username: 'alice', password: PASSWORD })).accessToken)).toBe(kid(oldKey));
    await published.close();

    const switched = await phase([newKey, oldKey]);
    const newToken = (await switched.auth.login({ username: 'alice', password: PASSWORD })).accessToken;
    expect(kidOf(newToken)).toBe(kid(newKey));
    expect((await switched.auth.validate({ accessToken: oldToken })).active).toBe(true);
    await switched.close();

    clock.advance(60_000);
    const retired = await phase([newKey]);
    expect(await retired.auth.validate({ accessToken: oldToken })).toMatchObject({ active: false, reason: InactiveReason.BAD_SIGNATURE });
    expect((await retired.auth.validate({ accessToken: newToken })).active).toBe(true);
    expect(JSON.parse((await retired.auth.getJwks({})).jwksJson).keys).toHaveLength(1);
    await retired.close();
  });
});

describe('signing-key rotation with no restart: one key file, edited, then SIGHUP', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-rotation-hup-'));
  const file = join(dir, 'keys.pem');
  const oldPem = generateEcPem();
  const newPem = generateEcPem();
  const kidOfPem = (pem: string) => {
    const path = join(dir, `${Math.random()}.pem`);
    writeFileSync(path, pem);
    return loadEcKeyFile(path).kid;
  };
  const [oldKid, newKid] = [kidOfPem(oldPem), kidOfPem(newPem)];
  const kidOf = (token: string) => jwt.decode(token, { complete: true })!.header.kid;
  let running: Running;
  let auth: Client<typeof AuthService>;

  beforeAll(async () => {
    writeFileSync(file, oldPem);
    running = await startProcess({ AUTH_SIGNING_KEY_FILE: file });
    auth = createClient(AuthService, String(running.started.address));
  });
  afterAll(async () => {
    auth.close();
    running.child.kill('SIGTERM');
    await running.exit;
  });

  /** Writes the file, sends SIGHUP and waits for the line that says how it went. */
  const reload = async (pem: string) => {
    writeFileSync(file, pem);
    const seen = running.lines.length;
    running.child.kill('SIGHUP');
    return eventually(() => running.lines.slice(seen).find((l) => l.event === 'keys_reloaded' || l.event === 'keys_reload_failed') ?? false);
  };
  const jwksKids = async () => (JSON.parse((await auth.getJwks({})).jwksJson) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);

  test('publish, sign with the new key, a bad edit changes nothing, retire the old one', async () => {
    await auth.register({ username: 'alice', password: PASSWORD });
    const first = await auth.login({ username: 'alice', password: PASSWORD });
    expect(kidOf(first.accessToken)).toBe(oldKid);

    // Publish: the new key verifies and is listed; the old one still signs.
    expect(await reload(`${oldPem}${newPem}`)).toMatchObject({ event: 'keys_reloaded', kids: [oldKid, newKid], signingKid: oldKid });
    expect(await jwksKids()).toEqual([oldKid, newKid]);
    expect(kidOf((await auth.login({ username: 'alice', password: PASSWORD })).accessToken)).toBe(oldKid);

    // Sign with the new key: tokens of the old one stay valid, its refresh tokens still rotate.
    expect(await reload(`${newPem}${oldPem}`)).toMatchObject({ event: 'keys_reloaded', signingKid: newKid });
    const second = await auth.login({ username: 'alice', password: PASSWORD });
    expect(kidOf(second.accessToken)).toBe(newKid);
    await expect(auth.validate({ accessToken: first.accessToken })).resolves.toMatchObject({ active: true });
    const rotated = await auth.refresh({ refreshToken: first.refreshToken });
    expect(kidOf(rotated.accessToken)).toBe(newKid);

    // A bad edit is logged and changes nothing.
    for (const bad of ['', 'not a key', `${newPem}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`, `${newPem}${newPem}`]) {
      const line = await reload(bad);
      expect(line).toMatchObject({ event: 'keys_reload_failed', level: 'error', cause: { type: 'KeyError' } });
      expect(JSON.stringify(line)).not.toContain('BEGIN');
    }
    expect(await jwksKids()).toEqual([newKid, oldKid]);
    await expect(auth.validate({ accessToken: first.accessToken })).resolves.toMatchObject({ active: true });

    // Retire the old key: its tokens are refused at once, even one checked (and remembered) before.
    expect(await reload(newPem)).toMatchObject({ event: 'keys_reloaded', kids: [newKid] });
    expect(await auth.validate({ accessToken: first.accessToken })).toMatchObject({ active: false, reason: InactiveReason.BAD_SIGNATURE });
    await expect(auth.validate({ accessToken: rotated.accessToken })).resolves.toMatchObject({ active: true });
    await expect(auth.refresh({ refreshToken: second.refreshToken })).resolves.toMatchObject({ tokenType: 'Bearer' });
    expect(await jwksKids()).toEqual([newKid]);
  });
});
