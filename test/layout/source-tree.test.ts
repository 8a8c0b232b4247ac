import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/*
 * The shape of src/ that reviews rely on, checked rather than remembered: what each layer may
 * import, one file per port in every store, and files small enough to read whole. (Import
 * circles, type-only imports counted, are `npm run check:cycles`, run by CI.)
 */

const ROOT = join(__dirname, '..', '..');
const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Every module a file names: import and export … from, import(), require(); type-only ones included. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gm), ...text.matchAll(/^\s*import\s+'([^']+)'/gm), ...text.matchAll(/\b(?:import|require)\(\s*'([^']+)'\s*\)/g)];
  return found.map((m) => m[1]!);
}

const files = sources(SRC).map((path) => ({ path: relative(ROOT, path), imports: specifiers(path), lines: readFileSync(path, 'utf8').split('\n').length }));
const packageOf = (spec: string) => (spec.startsWith('.') ? undefined : spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!.replace(/^node:/, 'node:'));

describe('src/', () => {
  test('the reader finds imports (a check that reads nothing passes everything)', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files.find((f) => f.path === 'src/store/postgres/base.ts')!.imports).toContain('pg');
    expect(files.find((f) => f.path === 'src/core/accounts.ts')!.imports.length).toBeGreaterThan(2);
  });

  test('no file over 500 lines (generated code is in gen/)', () => {
    const long = files.filter((f) => f.lines > 500).map((f) => `${f.path}: ${f.lines}`);
    expect(long).toEqual([]);
  });

  test('the core knows nothing of gRPC, protobuf or storage, nor of the layers above it', () => {
    const forbidden = /^(@grpc\/|@bufbuild\/|@opentelemetry\/|pg$|pg-|ioredis$|dataloader$|pino$)/;
    const above = /^\.\.\/(grpc|store|sdk|cli)\/|^\.\.\/\.\.\/gen\/|^\.\.\/(compose|run|main|app|index|tracing|logging|metrics)\.js$/;
    const wrong = files
      .filter((f) => f.path.startsWith('src/core/'))
      .flatMap((f) => f.imports.filter((s) => (s.startsWith('.') ? above.test(s) : forbidden.test(packageOf(s)!))).map((s) => `${f.path} -> ${s}`));
    expect(wrong).toEqual([]);
  });

  test.each([
    ['pg', 'src/store/postgres/base.ts'],
    ['pg-connection-string', 'src/store/postgres/base.ts'],
    ['ioredis', 'src/store/redis/base.ts'],
  ])('%s is imported by %s alone', (pkg, only) => {
    expect(files.filter((f) => f.imports.some((s) => packageOf(s) === pkg)).map((f) => f.path)).toEqual([only]);
  });

  test('gRPC stays in src/grpc, the SDK, the CLI health probe and the composition root', () => {
    const allowed = /^src\/(grpc\/|sdk\/|cli\/health\.ts|compose\.ts|app\.ts|run\.ts|main\.ts|tracing\.ts)/;
    const wrong = files.filter((f) => !allowed.test(f.path) && f.imports.some((s) => s.startsWith('@grpc/grpc-js'))).map((f) => f.path);
    expect(wrong).toEqual([]);
  });
});

describe('src/store: a folder per backend, a file per port', () => {
  const PORTS = ['users', 'sessions', 'service-accounts', 'attempts', 'rates', 'user-secrets'];
  const FACADES = { memory: 'MemoryStore', redis: 'RedisStore', postgres: 'PostgresStore' } as const;

  test.each(Object.entries(FACADES))('%s: base.ts, a file per port, each listed once by the facade %s', (backend, facade) => {
    const dir = join(SRC, 'store', backend);
    const names = readdirSync(dir);
    for (const port of ['base', ...PORTS]) expect(names).toContain(`${port}.ts`);
    const facadeFile = readFileSync(join(dir, `${backend}-store.ts`), 'utf8');
    expect(facadeFile).toContain(`export class ${facade} extends`);
    const listed = /const PORTS = \[([^\]]*)\]/.exec(facadeFile)![1]!.split(',').map((s) => s.trim()).filter(Boolean);
    for (const port of PORTS) {
      const cls = readFileSync(join(dir, `${port}.ts`), 'utf8').match(/export class (\w+) extends \w+Base\b/)?.[1];
      expect({ port, listed: cls !== undefined && listed.includes(cls) }).toEqual({ port, listed: true });
    }
  });
});
