import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import {
  experimental,
  type ServerCredentials,
} from '@grpc/grpc-js';

type CertificateProvider = experimental.CertificateProvider;
type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  /** When set, clients must present a certificate signed by this CA (mTLS). */
  readonly clientCa?: string | undefined;
}

export class TlsError extends Error {
  override readonly name = 'TlsError';
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsError(`cannot read TLS ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/**
 * TLS material read from PEM files, re-read on `reload()` (SIGHUP). It feeds grpc-js's
 * certificate-provider credentials, which swap the secure context of the listening server in
 * place: open connections keep theirs, new ones get the new certificate. A reload that fails
 * (unreadable files, a key that does not match the certificate) keeps the old material.
 */
export class ReloadableTls implements CertificateProvider {
  private identity!: { certificate: Buffer; privateKey: Buffer };
  private ca: { caCertificate: Buffer } | null = null;
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly caListeners = new Set<CaListener>();

  constructor(private readonly files: TlsFiles) {
    this.load();
  }

  get mutual(): boolean {
    return this.files.clientCa !== undefined;
  }

  /** Re-reads the files; throws TlsError (naming the file) and keeps the old material on failure. */
  reload(): void {
    this.load();
    for (const listener of this.identityListeners) listener(this.identity);
    for (const listener of this.caListeners) listener(this.ca);
  }

  private load(): void {
    const certificate = readPem(this.files.cert, 'certificate');
    const privateKey = readPem(this.files.key, 'key');
    const caCertificate = this.files.clientCa === undefined ? undefined : readPem(this.files.clientCa, 'client CA');
    try {
      // Fails on unparsable PEM and on a key that does not belong to the certificate.
      createSecureContext({ cert: certificate, key: privateKey, ...(caCertificate ? { ca: caCertificate } : {}) });
    } catch (err) {
      throw new TlsError(`TLS files ${this.files.cert} and ${this.files.key} do not form a usable certificate and key: ${(err as Error).message}`);
    }
    this.identity = { certificate, privateKey };
    this.ca = caCertificate ? { caCertificate } : null;
  }

  credentials(): ServerCredentials {
    // grpc-js names these parameters the other way round; the first is the identity provider.
    return experimental.createCertificateProviderServerCredentials(this, this.mutual ? this : (null as never), this.mutual);
  }

  // grpc-js adds its listeners before its own watcher and reads nothing that a synchronous call
  // delivers then, so the current material is handed over a moment later.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => this.caListeners.has(listener) && listener(this.ca));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => this.identityListeners.has(listener) && listener(this.identity));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}
