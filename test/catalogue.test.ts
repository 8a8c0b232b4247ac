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
