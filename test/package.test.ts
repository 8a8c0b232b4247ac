import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/**
 * Packs the package with `npm pack`, installs the tarball into a fresh project (its dependencies
 * come from the registry), and uses every entry point from there, in JavaScript and TypeScript.
 * The global setup has built dist/ already; --ignore-scripts keeps prepack from rebuilding it
 * under the feet of other test files that run the built service.
 */
describe('the packed package in a fresh project', () => {
  test('installs, type-checks, and runs test kit + client + interceptor', () => {
    const dir = mkdtempSync(join(tmpdir(), 'auth-pack-'));
    execFileSync(npm, ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, stdio: 'pipe' });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    const project = join(dir, 'app');
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    execFileSync(npm, ['install', '--no-audit', '--no-fund', '--silent', join(dir, tarball)], { cwd: project, stdio: 'pipe', timeout: 240_000 });

    writeFileSync(
      join(project, 'main.js'),
      `const { startTestAuthServer } = require('grpc-auth-service/testing');
const { createAuthClient } = require('grpc-auth-service/client');
const { createAuthInterceptor, getPrincipal } = require('grpc-auth-service/interceptor');
const { AuthError } = require('grpc-auth-service');
(async () => {
  const server = await startTestAuthServer();
  const user = await server.createUser('alice', ['admin']);
  const client = createAuthClient(server.address);
  const session = await client.login('alice', user.password);
  const me = await client.secure.adminPing({}, { credentials: session.callCredentials() });
  console.log(JSON.stringify({ pong: me.message, interceptor: typeof createAuthInterceptor, principal: typeof getPrincipal, error: typeof AuthError }));
  client.close();
  await server.close();
})().catch((err) => { console.error(err); process.exit(1); });
`,
    );
    const out = execFileSync(process.execPath, ['main.js'], { cwd: project, encoding: 'utf8', timeout: 60_000 });
    expect(JSON.parse(out)).toEqual({ pong: 'pong', interceptor: 'function', principal: 'function', error: 'function' });

    writeFileSync(
      join(project, 'check.ts'),
      `import { createAuthClient, TokenSession, AuthClientError } from 'grpc-auth-service/client';
import { createAuthInterceptor, getPrincipal, type Principal } from 'grpc-auth-service/interceptor';
import { startTestAuthServer, type TestAuthServer } from 'grpc-auth-service/testing';
import { loadConfig, type Config } from 'grpc-auth-service';
const client: ReturnType<typeof createAuthClient> | undefined = undefined;
const principal: Principal | undefined = undefined;
const server: Promise<TestAuthServer> | undefined = undefined;
const config: Config | undefined = undefined;
void [client, principal, server, config, TokenSession, AuthClientError, createAuthInterceptor, getPrincipal, startTestAuthServer, loadConfig];
`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] },
        files: ['check.ts'],
      }),
    );
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { cwd: project, stdio: 'pipe' });
  }, 300_000);
});
