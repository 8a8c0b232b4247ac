import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { moduleDir } from './module-dir.js';

/**
 * This release's version, from the package's own package.json (beside dist/src, dist/esm/src, or
 * src in a checkout): what `grpc-auth --version` prints, the `started` line and `auth_build_info` carry.
 */
export const VERSION: string = readVersion();

function readVersion(): string {
  for (const up of [['..'], ['..', '..'], ['..', '..', '..']]) {
    try {
      const pkg = JSON.parse(readFileSync(join(moduleDir, ...up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'grpc-auth-service' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not there: look one level up.
    }
  }
  return 'unknown';
}
