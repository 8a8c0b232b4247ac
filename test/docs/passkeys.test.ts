import { startProcess } from '../helpers/process';
import { describeNeeding } from '../helpers/requires';
import { eventually } from '../helpers/wait';
import { docBlock, expectSteps, runWalkthrough } from '../helpers/walkthrough';

// The authenticator is examples/passkeys/authenticator.py (Python, python3-cryptography): the
// ceremony's bytes are made by code that shares nothing with the service or its library.
describeNeeding(['jq', 'python3-grpcio'], 'docs: passkeys with grpcurl and a software authenticator', () => {
  test('register a passkey, sign in without a username, the replay refused', async () => {
    const script = docBlock('docs/passkeys.md', 'passkeys');
    const running = await startProcess({ AUTH_WEBAUTHN_RP_ID: 'localhost', AUTH_WEBAUTHN_ORIGINS: 'https://localhost' });
    try {
      const out = runWalkthrough(script, String(running.started.address));
      expectSteps(out, [
        '"userId": "usr_',
        '"passkey": {\n    "passkeyId": "',
        '"name": "laptop"',
        '"transports": [\n      "internal"\n    ]',
        '"active": true,\n  "username": "dave",\n  "amr": [\n    "pop",\n    "mfa"\n  ]',
        'Code: NotFound\n  Message: no such ceremony, or it was used or has expired; start again',
      ]);
      expect(out.match(/ERROR:/g)).toHaveLength(1);
      expect(out).not.toMatch(/Failed to|command not found|Traceback|NotAllowedError/);
      await eventually(() => running.lines.some((l) => l.event === 'passkey_login_refused'));
      const events = running.lines.map((l) => l.event);
      for (const event of ['passkey_added', 'passkey_login_succeeded', 'passkey_login_refused']) expect(events).toContain(event);
      // Neither the challenges nor the signed answers reach the log.
      const logged = JSON.stringify(running.lines);
      for (const match of out.matchAll(/"challenge":\s*"([A-Za-z0-9_-]{43})"/g)) expect(logged).not.toContain(match[1]);
      expect(logged).not.toContain('clientDataJSON');
      expect(logged).not.toContain('signature');
    } finally {
      running.child.kill('SIGTERM');
    }
  });
});
