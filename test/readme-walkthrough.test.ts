import { startProcess } from './helpers/process';
import { expectSteps, readmeBlocks, runWalkthrough } from './helpers/walkthrough';

describe('README walkthrough with grpcurl', () => {
  test('every step works and prints what the README says', async () => {
    const [script] = readmeBlocks('## Walkthrough with grpcurl');
    const running = await startProcess({});
    try {
      const out = runWalkthrough(script!, String(running.started.address));
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
  });
});
