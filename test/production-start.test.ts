import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/process';
import { productionCommands, startThenTerminate } from './helpers/production';

describe("the README's production start", () => {
  test('the block names node directly, never npm or a shell', () => {
    const commands = productionCommands();
    expect(commands).toHaveLength(3);
    for (const argv of commands) expect(argv[0]).not.toMatch(/^(npm|npx|sh|bash)$/);
  });

  test('SIGTERM to exactly the process the README starts (from a checkout): a clean drain and exit 0', async () => {
    const fromCheckout = productionCommands()[0]!;
    expect(fromCheckout).toEqual(['node', 'dist/src/main.js']);
    const { code, signal, events, stderr } = await startThenTerminate(fromCheckout, ROOT);
    expect({ code, signal, events: events.slice(-3), stderr }).toEqual({ code: 0, signal: null, events: ['started', 'stopping', 'stopped'], stderr: '' });
  }, 60_000);

  test('the systemd unit and the Kubernetes manifest run node on the service directly, with gRPC probes', () => {
    const unit = readFileSync(join(ROOT, 'examples', 'deploy', 'grpc-auth.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \S+\/grpc-auth-service\/dist\/src\/main\.js$/m);
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit).toMatch(/^RestartPreventExitStatus=2$/m);
    const manifest = readFileSync(join(ROOT, 'examples', 'deploy', 'kubernetes.yaml'), 'utf8');
    expect(manifest).toMatch(/command: \["node", "\/app\/node_modules\/grpc-auth-service\/dist\/src\/main\.js"\]/);
    expect(manifest).toMatch(/livenessProbe:\n\s+grpc: \{ port: 50051, service: liveness \}/);
    expect(manifest).toMatch(/readinessProbe:\n\s+grpc: \{ port: 50051 \}/);
    expect(manifest).toMatch(/secretKeyRef: \{ name: grpc-auth-redis, key: url \}/);
  });
});
