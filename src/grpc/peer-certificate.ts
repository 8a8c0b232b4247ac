import { createHash } from 'node:crypto';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context.js';

/**
 * The SHA-256 thumbprint (base64url, RFC 8705's x5t#S256) of the TLS client certificate a call
 * came with, when it came over mTLS with a certificate the server verified; undefined otherwise
 * (plaintext, TLS without a client certificate).
 */
export function peerCertificateThumbprint(auth: AuthContext | null | undefined): string | undefined {
  const raw = auth?.sslPeerCertificate?.raw;
  return raw ? createHash('sha256').update(raw).digest('base64url') : undefined;
}
