import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { InactiveReason } from '../gen/auth/v1/auth_pb';
import { ManualClock } from '../src/clock';
import { generateEcPem, loadEcKeyFile } from '../src/core/keys';
import { memoryStore } from './helpers/stores';
import { PASSWORD, startTestServer } from './helpers/server';

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
