/**
 * The TLS settings of the service's own listener, in one place: the listener is created with them
 * and every certificate swap (setSecureContext) passes them again, so a reload can never fall back
 * to Node's defaults.
 */
import { constants } from 'node:crypto';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { CertificatePair } from './certificate-pair';

export const SERVER_TLS_SETTINGS = {
  // TLS 1.0 and 1.1 are refused (RFC 8996); TLS 1.3 is the highest and so the one a modern client gets.
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  // Among the TLS 1.2 suites, the server's order (Node's default list: ECDHE with AES-GCM first) wins.
  honorCipherOrder: true,
  // Renegotiation: a client-initiated one is refused outright (a CPU sink and the old
  // renegotiation-injection class of bugs); TLS 1.3 has none. Compression (CRIME): Node's OpenSSL is
  // built without it and Node already sets SSL_OP_NO_COMPRESSION; it is stated again so this list
  // is the whole policy.
  secureOptions: constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_NO_COMPRESSION,
} as const satisfies TlsOptions;

/** What the listener and each swap get: the fixed settings plus the current certificate pair. */
export function secureContextOptions(pair: CertificatePair): SecureContextOptions {
  return { ...SERVER_TLS_SETTINGS, cert: pair.certificateChainPem, key: pair.privateKeyPem };
}
