import { status } from '@grpc/grpc-js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { configTable } from '../../src/config';
import { AuthError, authErrorCodes, errorReasons } from '../../src/errors';
import { statusByCode, toStatus } from '../../src/grpc/status';

const ROOT = join(__dirname, '..', '..');
const page = (name: string) => readFileSync(join(ROOT, 'docs', name), 'utf8');

/** Rows of the table of docs/`file` whose header starts with `header`, as arrays of cells. */
function tableRows(file: string, header: string): string[][] {
  const lines = page(file).split('\n');
  const start = lines.findIndex((l) => l.startsWith(`| ${header} |`));
  expect(start).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (let i = start + 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    rows.push(lines[i]!.split('|').slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, '')));
  }
  return rows;
}

/** Every TypeScript source of the service (not tests, not generated code). */
function sources(dir = join(ROOT, 'src')): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [readFileSync(path, 'utf8')] : [];
  });
}
const source = sources().join('\n');

describe('error catalogue', () => {
  test('every code has a status and a row in docs/errors.md, and every row is a code with that status', () => {
    const rows = tableRows('errors.md', 'Error code');
    expect(rows.map((r) => r[0]).sort()).toEqual([...authErrorCodes].sort());
    for (const [code, grpcStatus] of rows) {
      expect(status[statusByCode[code as keyof typeof statusByCode]]).toBe(grpcStatus);
    }
  });

  test('every documented code is produced somewhere in the service, and only documented codes are', () => {
    const produced = new Set([...source.matchAll(/AuthError\(\s*'([a-z_]+)'/g)].map((m) => m[1]!));
    expect([...produced].sort()).toEqual([...authErrorCodes].sort());
  });

  test('every ErrorInfo reason has a row in docs/errors.md, and every row is a reason', () => {
    expect(tableRows('errors.md', 'Reason').map((r) => r[0]).sort()).toEqual([...errorReasons].sort());
  });

  test('no refusal bypasses the table: nothing but status.ts names a gRPC status code to send', () => {
    const offenders = sources().filter((text) => /code:\s*(Status|status)\.[A-Z_]+/.test(text) && !text.includes('The one table from error codes to gRPC status codes'));
    expect(offenders.map((t) => t.slice(0, 80))).toEqual([]);
  });

  test('anything that is not an AuthError becomes INTERNAL with a generic message', () => {
    expect(toStatus(new TypeError('secret detail'))).toEqual({ code: status.INTERNAL, details: 'internal error' });
    expect(toStatus('a string')).toEqual({ code: status.INTERNAL, details: 'internal error' });
    expect(toStatus(new AuthError('overloaded', 'busy'))).toEqual({ code: status.RESOURCE_EXHAUSTED, details: 'busy' });
  });
});

describe('configuration table', () => {
  test('the table of docs/configuration.md is the one generated from the settings (npm run docs rewrites it)', () => {
    const readme = page('configuration.md');
    const start = readme.indexOf('<!-- config:table -->\n');
    const end = readme.indexOf('\n<!-- /config:table -->');
    expect(start).toBeGreaterThanOrEqual(0);
    expect(readme.slice(start + '<!-- config:table -->\n'.length, end)).toBe(configTable());
  });
});

describe('audit event table', () => {
  test('every event the code logs is documented, and every documented event is logged somewhere', () => {
    const emitted = new Set([...source.matchAll(/event: '([a-z_]+)'/g)].map((m) => m[1]!));
    const documented = new Set(tableRows('observability.md', 'Event').flatMap((r) => r[0]!.split(' / ').map((c) => c.replace(/`/g, ''))));
    expect([...documented].sort()).toEqual([...emitted].sort());
  });
});
