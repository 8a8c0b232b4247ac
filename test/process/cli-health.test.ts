import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers/process';
import { startTestServer, type TestServer } from '../helpers/server';
import { createTestCa, describeWithOpenssl } from '../helpers/tls';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** `grpc-auth health …` as a container's HEALTHCHECK or a Kubernetes exec probe runs it. */
function health(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'health', ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('grpc-auth health, plaintext', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.close());

  test.each([
    { name: 'the whole server: SERVING, exit 0', args: () => ['--address', s.address], want: { status: 0, stdout: 'SERVING\n', stderr: '' } },
    { name: 'one service by name', args: () => ['--address', s.address, '--service', 'auth.v1.AuthService'], want: { status: 0, stdout: 'SERVING\n', stderr: '' } },
    { name: 'the address from AUTH_ADDRESS, a wildcard read as loopback', args: () => [], env: () => ({ AUTH_ADDRESS: `0.0.0.0:${s.address.split(':')[1]}` }), want: { status: 0, stdout: 'SERVING\n', stderr: '' } },
    {
      name: 'a name the server does not serve: exit 1, the answer named',
      args: () => ['--address', s.address, '--service', 'no.such.Service'],
      want: { status: 1, stdout: '', stderr: expect.stringMatching(/^grpc-auth: 127\.0\.0\.1:\d+ \(no\.such\.Service\): NOT_FOUND: /) },
    },
    { name: 'nothing listening: exit 1, the address named', args: () => ['--address', '127.0.0.1:1', '--timeout', '500'], want: { status: 1, stdout: '', stderr: expect.stringMatching(/^grpc-auth: 127\.0\.0\.1:1: (UNAVAILABLE|DEADLINE_EXCEEDED): /) } },
    { name: 'a bad argument: exit 2 with the usage', args: () => ['--frobnicate'], want: { status: 2, stdout: '', stderr: expect.stringMatching(/^grpc-auth: unknown argument "--frobnicate"\n\nusage: grpc-auth health/) } },
  ])('$name', async ({ args, env, want }) => {
    expect(await health(args(), env?.() ?? {})).toEqual(want);
  });
});

describeWithOpenssl('grpc-auth health over TLS and mTLS', () => {
  const ca = createTestCa('health');
  const server = ca.issue('server', 'server');
  const probe = ca.issue('probe', 'client');

  test('TLS: verified against the CA; a plaintext probe of a TLS server fails', async () => {
    const s = await startTestServer({ env: { AUTH_TLS_CERT: server.cert, AUTH_TLS_KEY: server.key } });
    try {
      expect(await health(['--address', s.address, '--ca', ca.caPem])).toEqual({ status: 0, stdout: 'SERVING\n', stderr: '' });
      // The service's own environment turns TLS on (as in its container); the CA still names whom to trust.
      expect(await health(['--address', s.address, '--ca', ca.caPem], { AUTH_TLS_CERT: server.cert })).toEqual({ status: 0, stdout: 'SERVING\n', stderr: '' });
      expect((await health(['--address', s.address, '--timeout', '1000'])).status).toBe(1);
    } finally {
      await s.close();
    }
  });

  test('mTLS: the probe presents a client certificate; without one it fails', async () => {
    const s = await startTestServer({ env: { AUTH_TLS_CERT: server.cert, AUTH_TLS_KEY: server.key, AUTH_TLS_CLIENT_CA: ca.caPem } });
    try {
      expect(await health(['--address', s.address, '--ca', ca.caPem, '--cert', probe.cert, '--key', probe.key])).toEqual({ status: 0, stdout: 'SERVING\n', stderr: '' });
      expect((await health(['--address', s.address, '--ca', ca.caPem, '--timeout', '1000'])).status).toBe(1);
    } finally {
      await s.close();
    }
  });
});
