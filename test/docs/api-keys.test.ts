import { startProcess } from '../helpers/process';
import { eventually } from '../helpers/wait';
import { bootstrapAdmin, docBlock, expectSteps, runWalkthrough } from '../helpers/walkthrough';

describe('docs: API keys with grpcurl', () => {
  test('create, exchange, call, revoke: the key and its token refused at once', async () => {
    const script = docBlock('docs/api-keys.md', 'api-keys');
    const running = await startProcess({ AUTH_USERS_FILE: bootstrapAdmin(), AUTH_API_KEY_SECRET: 'a secret the instances share, 32+ bytes' });
    try {
      const out = runWalkthrough(script, String(running.started.address));
      expectSteps(out, [
        '"userId": "usr_',
        '"username": "erin"',
        '"reason": "INACTIVE_REASON_REVOKED"',
        'Code: Unauthenticated\n  Message: the API key is invalid, expired or revoked',
      ]);
      expect(out.match(/ERROR:/g)).toHaveLength(1);
      expect(out).not.toMatch(/Failed to|command not found|null/);
      await eventually(() => running.lines.some((l) => l.event === 'api_key_exchange_failed'));
      const events = running.lines.map((l) => l.event);
      for (const event of ['api_key_created', 'api_key_exchanged', 'api_key_revoked']) expect(events).toContain(event);
      // The secret never reaches the log.
      expect(JSON.stringify(running.lines)).not.toMatch(/gak_[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{43}/);
    } finally {
      running.child.kill('SIGTERM');
    }
  });
});
