import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/process';
import { productionCommands, startThenTerminate } from '../helpers/production';

describe("docs/production.md's production start", () => {
  test('the block names node directly, never npm or a shell', () => {
    const commands = productionCommands();
    expect(commands).toHaveLength(3);
    for (const argv of commands) expect(argv[0]).not.toMatch(/^(npm|npx|sh|bash)$/);
  });

  test('SIGTERM to exactly the process docs/production.md starts (from a checkout): a clean drain and exit 0', async () => {
    const fromCheckout = productionCommands()[0]!;
    expect(fromCheckout).toEqual(['node', 'dist/src/main.js']);
    const { code, signal, events, stderr } = await startThenTerminate(fromCheckout, ROOT);
    expect({ code, signal, events: events.slice(-3), stderr }).toEqual({ code: 0, signal: null, events: ['started', 'stopping', 'stopped'], stderr: '' });
  }, 60_000);

  test('the systemd unit and the image run node on the service directly; the Kubernetes pod keeps the image\'s entry point', () => {
    const unit = readFileSync(join(ROOT, 'examples', 'deploy', 'grpc-auth.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \S+\/grpc-auth-service\/dist\/src\/main\.js$/m);
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit).toMatch(/^RestartPreventExitStatus=2$/m);
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "dist\/src\/cli\/main\.js"\]$/m);
    expect(dockerfile).toMatch(/^CMD \["serve"\]$/m);
    const manifest = readFileSync(join(ROOT, 'examples', 'deploy', 'kubernetes.yaml'), 'utf8');
    // The container (its fields at ten spaces) overrides no command: only the probes' exec has one.
    expect(manifest).not.toMatch(/^ {10}command:/m);
    expect(manifest).toMatch(/^\s+args: \["serve"\]$/m);
  });
});
