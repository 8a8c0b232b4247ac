import { startProcess } from '../helpers/process';
import { eventually } from '../helpers/wait';
import { bootstrapAdmin, expectSteps, docBlock, runWalkthrough } from '../helpers/walkthrough';

describe('docs: service-to-service with grpcurl', () => {
  test('create an account, get a token, call, rotate the secret', async () => {
    const script = docBlock('docs/service-accounts.md', 'service-accounts');
    const running = await startProcess({ AUTH_USERS_FILE: bootstrapAdmin() });
    try {
      const out = runWalkthrough(script, String(running.started.address));
      expectSteps(out, ['"subjectType": "SUBJECT_TYPE_SERVICE_ACCOUNT"', '"accessToken": "ey', '"reason": "INACTIVE_REASON_REVOKED"', 'Code: Unauthenticated\n  Message: client authentication failed']);
      expect(out.match(/ERROR:/g)).toHaveLength(1);
      expect(out).not.toMatch(/Failed to|command not found|null/);
      await eventually(() => running.lines.filter((l) => l.event === 'service_token_issued').length === 2);
    } finally {
      running.child.kill('SIGTERM');
      await running.exit;
    }
  });
});
