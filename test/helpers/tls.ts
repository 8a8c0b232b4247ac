import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeNeeding } from './requires';


export interface TestCa {
  readonly dir: string;
  readonly caPem: string;
  /** Issues a certificate for `name` (a server's names: localhost, 127.0.0.1 and `dnsNames`) and returns file paths. */
  issue(name: string, usage: 'server' | 'client', dnsNames?: readonly string[]): { cert: string; key: string };
}

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

/** A throw-away certificate authority with P-256 keys, valid for a day. */
export function createTestCa(label: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), `auth-ca-${label}-`));
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', `/CN=test-ca-${label}`]);
  return {
    dir,
    caPem: join(dir, 'ca.pem'),
    issue(name, usage, dnsNames = []) {
      const ext = join(dir, `${name}.ext`);
      writeFileSync(
        ext,
        usage === 'server' ? `subjectAltName=DNS:localhost,IP:127.0.0.1${dnsNames.map((n) => `,DNS:${n}`).join('')}\nextendedKeyUsage=serverAuth\n` : 'extendedKeyUsage=clientAuth\n',
      );
      openssl(dir, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
      openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', ext]);
      return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    },
  };
}

export const pem = (path: string) => readFileSync(path);

/** Describes a suite that needs openssl (see describeNeeding: missing means failing, unless opted out). */
export function describeWithOpenssl(name: string, body: () => void): void {
  describeNeeding(['openssl'], name, body);
}
