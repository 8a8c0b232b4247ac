import { status } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configVariables } from '../src/config';
import { AuthError, authErrorCodes } from '../src/errors';
import { statusByCode, toStatus } from '../src/grpc/status';

const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');

/** Rows of the README table whose header starts with `header`, as arrays of cells. */
function tableRows(header: string): string[][] {
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`| ${header} |`));
  expect(start).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (let i = start + 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    rows.push(lines[i]!.split('|').slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, '')));
  }
  return rows;
}

describe('error catalogue', () => {
  test('every code has a status and a README row, and every README row is a code with that status', () => {
    const rows = tableRows('Error code');
    expect(rows.map((r) => r[0]).sort()).toEqual([...authErrorCodes].sort());
    for (const [code, grpcStatus] of rows) {
      expect(status[statusByCode[code as keyof typeof statusByCode]]).toBe(grpcStatus);
    }
  });

  test('anything that is not an AuthError becomes INTERNAL with a generic message', () => {
    expect(toStatus(new TypeError('secret detail'))).toEqual({ code: status.INTERNAL, details: 'internal error' });
    expect(toStatus('a string')).toEqual({ code: status.INTERNAL, details: 'internal error' });
    expect(toStatus(new AuthError('overloaded', 'busy'))).toEqual({ code: status.RESOURCE_EXHAUSTED, details: 'busy' });
  });
});

describe('configuration table', () => {
  test('README lists every variable with its default, and nothing else', () => {
    const rows = tableRows('Variable');
    expect(Object.fromEntries(rows.map((r) => [r[0], r[1]]))).toEqual(Object.fromEntries(Object.entries(configVariables).map(([k, v]) => [k, v.default])));
  });
});

describe('audit event table', () => {
  test('every event the code emits is documented, and every documented event is emitted somewhere', () => {
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
    const source = execFileSync('grep', ['-rhoE', "event: '[a-z_]+'", join(__dirname, '..', 'src', 'core')], { encoding: 'utf8' });
    const emitted = new Set([...source.matchAll(/event: '([a-z_]+)'/g)].map((m) => m[1]!));
    emitted.add('key_loaded');
    emitted.add('tls_reloaded');
    emitted.add('tls_reload_failed');
    emitted.add('store_unavailable');
    emitted.add('store_recovered');
    const documented = new Set(tableRows('Event').flatMap((r) => r[0]!.split(' / ').map((c) => c.replace(/`/g, ''))));
    expect([...documented].sort()).toEqual([...emitted].sort());
  });
});
