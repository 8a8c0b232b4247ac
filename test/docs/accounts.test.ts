import { startProcess } from '../helpers/process';
import { eventually } from '../helpers/wait';
import { bootstrapAdmin, expectSteps, docBlock, runWalkthrough } from '../helpers/walkthrough';

describe('docs: accounts and administration with grpcurl', () => {
  test('bootstrap an admin with the CLI, then every step', async () => {
    const [bootstrap, session] = [docBlock('docs/accounts.md', 'admin-bootstrap'), docBlock('docs/accounts.md', 'admin-session')];
    expect(bootstrap).toContain('AUTH_USERS_FILE=users npm start');
    const running = await startProcess({ AUTH_USERS_FILE: bootstrapAdmin() });
    try {
      const out = runWalkthrough(session!, String(running.started.address));
      expectSteps(out, [
        '"username": "bob"',
        '"origin": "USER_ORIGIN_API"',
        '"username": "bob"',
        '"current": true',
        'Code: PermissionDenied\n  Message: requires role admin',
        '"admin"',
        '"message": "pong"',
        '"disabled": true',
        '"reason": "INACTIVE_REASON_REVOKED"',
        'Code: FailedPrecondition\n  Message: account disabled',
      ]);
      expect(out.match(/ERROR:/g)).toHaveLength(2);
      expect(out).not.toMatch(/Failed to|command not found|null/);
      // The walkthrough ran synchronously: the service's log lines are read from here on.
      await eventually(() => running.lines.some((l) => l.event === 'user_deleted'));
      const events = ['user_created', 'roles_changed', 'user_disabled', 'user_enabled', 'login_throttle_reset', 'user_deleted'];
      expect(running.lines.filter((l) => events.includes(String(l.event))).map((l) => l.event)).toEqual(events);
    } finally {
      running.child.kill('SIGTERM');
      await running.exit;
    }
  });
});
