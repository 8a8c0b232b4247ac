import { startProcess } from '../helpers/process';
import { describeNeeding } from '../helpers/requires';
import { eventually } from '../helpers/wait';
import { bootstrapAdmin, expectSteps, docBlock, runWalkthrough } from '../helpers/walkthrough';

// The codes come from oathtool (liboath, Debian's package): an RFC 6238 implementation the
// service does not share (it uses the otpauth library).
describeNeeding(['oathtool'], 'docs: second factor and password reset with grpcurl', () => {
  test('enroll, confirm, step-up refused then passed, login with a code, reset with a recovery code', async () => {
    const script = docBlock('docs/second-factor.md', 'second-factor');
    const running = await startProcess({ AUTH_USERS_FILE: bootstrapAdmin() });
    try {
      const out = runWalkthrough(script, String(running.started.address));
      expectSteps(out, [
        '"userId": "usr_',
        'otpauth://totp/grpc-auth:carol?issuer=grpc-auth&secret=',
        '&algorithm=SHA1&digits=6&period=30\n',
        '"mfa": {\n    "enabled": true,\n    "recoveryCodesLeft": 10,',
        'Code: Unauthenticated\n  Message: this method needs a sign-in with a second factor',
        '"amr": [\n    "pwd",\n    "otp"\n  ]',
        '"authTime": "',
        '"message": "pong"',
        '"reason": "INACTIVE_REASON_REVOKED"',
        'Code: Unauthenticated\n  Message: the username, reset code or second factor is not valid, or the code was used or has expired',
      ]);
      expect(out.match(/ERROR:/g)).toHaveLength(2);
      expect(out).not.toMatch(/Failed to|command not found|null|oathtool:/);
      await eventually(() => running.lines.some((l) => l.event === 'password_reset_by_code'));
      const events = running.lines.map((l) => l.event);
      for (const event of ['mfa_enrollment_started', 'mfa_enabled', 'mfa_challenged', 'mfa_succeeded', 'password_reset_code_created', 'password_reset_failed']) expect(events).toContain(event);
      // No secret or mfa_token in any log line (the codes are checked in test/accounts/second-factor.test.ts, whose server logs are canaried).
      const secret = /secret=([A-Z2-7]{32})&/.exec(out)?.[1];
      expect(secret).toBeDefined();
      const logged = JSON.stringify(running.lines);
      expect(logged).not.toContain(secret);
      expect(logged).not.toContain('mfa_usr_');
      // An audit field never shadows the call's own fields (method is the RPC).
      expect(running.lines.find((l) => l.event === 'mfa_succeeded')).toMatchObject({ method: '/auth.v1.AuthService/CompleteLogin', factor: 'totp' });
    } finally {
      running.child.kill('SIGTERM');
      await running.exit;
    }
  });
});
