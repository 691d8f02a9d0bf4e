/**
 * Hand-made compact JWS for the HTTP attack tests. Tokens are assembled byte by byte (not through
 * jose's SignJWT) so a test can send what a careful library refuses to sign: alg none, HMAC keyed
 * with a public key, embedded keys, duplicate header names, a certificate chain of its own.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestAlgorithm, TestKey } from '../auth/support/test-keys';

// The key pairs and token assembly are the auth unit tests' own (test/auth/support/test-keys.ts):
// one implementation serves both the verifier's tests and the HTTP attack tests.
export {
  base64url,
  buildToken,
  hmacSignature,
  keySetOf,
  makeKey,
  nowSeconds,
  signatureFor,
  signedToken,
} from '../auth/support/test-keys';
export type SigningAlgorithm = TestAlgorithm;
export type ForgeryKey = TestKey;

/**
 * A self-signed certificate for `key` (DER, base64 as in an x5c header), made with the openssl
 * CLI: a token can then carry a chain that really matches its signature, so only refusing
 * the header (not a mismatch) can stop it.
 */
export function selfSignedCertificateBase64(key: ForgeryKey): string {
  const directory = mkdtempSync(join(tmpdir(), 'provsec-x5c-'));
  try {
    const keyFile = join(directory, 'key.pem');
    const certFile = join(directory, 'cert.der');
    writeFileSync(keyFile, key.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-new',
        '-key',
        keyFile,
        '-subj',
        '/CN=attacker',
        '-days',
        '1',
        '-outform',
        'DER',
        '-out',
        certFile,
      ],
      { stdio: 'ignore' },
    );
    return readFileSync(certFile).toString('base64');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
