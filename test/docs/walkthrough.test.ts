import { startPostgres, type TestPostgres } from '../helpers/postgres';
import { startProcess } from '../helpers/process';
import { available } from '../helpers/requires';
import { expectSteps, docBlock, runWalkthrough } from '../helpers/walkthrough';

describe('the five-minute tour (README) with grpcurl', () => {
  let pg: TestPostgres | undefined;
  afterAll(() => pg?.destroy());

  // The same walkthrough on the memory store and on PostgreSQL (which must be there: see .ci/run).
  test.each(['memory', 'postgres'])('every step works and prints what docs/walkthrough.md says (%s store)', async (store) => {
    const script = docBlock('README.md', 'tour');
    if (store === 'postgres' && !available('postgresql')) throw new Error('PostgreSQL not found: apt-get install -y postgresql');
    if (store === 'postgres') pg = await startPostgres();
    const running = await startProcess(pg ? { AUTH_DATABASE_URL: await pg.createDatabase() } : {});
    try {
      const out = runWalkthrough(script, String(running.started.address));
      // Each expectation is one step of the walkthrough, in order.
      expectSteps(out, [
        'auth.v1.AccountService\nauth.v1.AdminService\nauth.v1.AuthService\nauth.v1.SecureService\ngrpc.health.v1.Health\n',
        'Login checks a password and starts a session',
        '"userId": "usr_',
        '"tokenType": "Bearer"',
        '"username": "alice"',
        'Code: Unauthenticated\n  Message: missing bearer token',
        'Code: PermissionDenied\n  Message: requires role admin',
        '"active": true',
        '"jwksJson": "{\\"keys\\":[{\\"kty\\":\\"EC\\"',
        '"status": "SERVING"',
        '"reason": "INACTIVE_REASON_REVOKED"',
      ]);
      expect(out.match(/ERROR:/g)).toHaveLength(2);
      expect(out).not.toMatch(/Failed|command not found|null/);
    } finally {
      running.child.kill('SIGTERM');
      await running.exit;
    }
  }, 60_000);
});
