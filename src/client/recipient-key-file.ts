/**
 * The worker's private recipient key, from PROVSEC_RECIPIENT_KEY_FILE: a private JWK (as keygen
 * writes it) or a PKCS#8 PEM. Only EC P-256 and X25519, the curves the service encrypts to.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { usageError } from './errors';

export interface RecipientPrivateKey {
  readonly privateKey: KeyObject;
  /** The JWK's kid; undefined for a PEM file (the service's JWE header then names it). */
  readonly kid: string | undefined;
  /** RFC 7638 SHA-256 thumbprint of the public key: how the client names its key to the service. */
  readonly thumbprint: string;
}

export async function loadRecipientKey(path: string): Promise<RecipientPrivateKey> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw usageError(`recipient key file ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let privateKey: KeyObject;
  let kid: string | undefined;
  try {
    if (text.trimStart().startsWith('{')) {
      const jwk = JSON.parse(text) as JWK;
      if (typeof jwk.d !== 'string')
        throw usageError(`recipient key file ${path} holds a public JWK; the client needs the private key (with "d")`);
      kid = typeof jwk.kid === 'string' ? jwk.kid : undefined;
      privateKey = createPrivateKey({ key: { ...jwk }, format: 'jwk' });
    } else {
      privateKey = createPrivateKey({ key: text, format: 'pem' });
    }
  } catch (error) {
    if (error instanceof Error && error.name === 'SecretClientError') throw error;
    // The parser's message could quote key bytes; say only what kind of file was expected.
    throw usageError(`recipient key file ${path} is not a private JWK or PKCS#8 PEM key`);
  }
  const curveOk =
    privateKey.asymmetricKeyType === 'x25519' ||
    (privateKey.asymmetricKeyType === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1');
  if (!curveOk) throw usageError(`recipient key file ${path} must hold an EC P-256 or X25519 key`);
  const publicJwk = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
  return { privateKey, kid, thumbprint: await calculateJwkThumbprint(publicJwk, 'sha256') };
}
