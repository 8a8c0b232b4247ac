import { writeFileSync } from 'node:fs';
import { generateEcPem, loadEcKeyFile } from '../core/keys.js';

/**
 * Writes a new ES256 (P-256) signing key file and prints its kid (the RFC 7638 thumbprint):
 *   npm run --silent keys:generate -- /etc/auth/signing.pem
 * The file is created with mode 0600 and never overwrites an existing one.
 */
function main(): void {
  const path = process.argv[2];
  if (!path || process.argv.length > 3) {
    process.stderr.write('usage: keys:generate <new-key-file.pem>\n');
    process.exit(2);
  }
  try {
    writeFileSync(path, generateEcPem(), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    process.stderr.write(`keys:generate: cannot create ${path}: ${code === 'EEXIST' ? 'the file exists (refusing to overwrite a key)' : (code ?? 'error')}\n`);
    process.exit(1);
  }
  process.stdout.write(`${loadEcKeyFile(path).kid}\n`);
}

main();
