/**
 * Seals a secret answer for one worker: a compact JWE (ECDH-ES+A256KW, A256GCM) to the worker's
 * registered public key, built by jose. Invariants: the plaintext leaves only inside the JWE; the
 * recipient's kid, the group id and the secret version sit in the protected header, which AES-GCM
 * authenticates, so the worker can check the answer is for its request before and after decrypting.
 */
import type { KeyObject } from 'node:crypto';
import { CompactEncrypt } from 'jose';
import {
  GROUP_HEADER_PARAMETER,
  SECRET_JWE_ALG,
  SECRET_JWE_ENC,
  VERSION_HEADER_PARAMETER,
} from '../protocol/secret-answer';
import { InvalidRecipientKeyError } from './errors';
import { needs } from './needs';

export interface SecretRecipient {
  readonly kid: string;
  readonly publicKey: KeyObject;
}

/** Encrypts `plaintext` (the JSON answer's bytes) to `recipient`; the caller zeroes the plaintext. */
export async function encryptForRecipient(
  plaintext: Uint8Array,
  recipient: SecretRecipient,
  binding: { readonly groupId: string; readonly secretVersion: number },
): Promise<string> {
  // The policy admits only these curves; anything else here is a wiring mistake, not a key to try.
  needs(
    recipient.publicKey.type === 'public' &&
      (recipient.publicKey.asymmetricKeyType === 'x25519' ||
        (recipient.publicKey.asymmetricKeyType === 'ec' &&
          recipient.publicKey.asymmetricKeyDetails?.namedCurve === 'prime256v1')),
    () => new InvalidRecipientKeyError('a recipient key must be an EC P-256 or X25519 public key'),
  );
  return new CompactEncrypt(plaintext)
    .setProtectedHeader({
      alg: SECRET_JWE_ALG,
      enc: SECRET_JWE_ENC,
      kid: recipient.kid,
      [GROUP_HEADER_PARAMETER]: binding.groupId,
      [VERSION_HEADER_PARAMETER]: binding.secretVersion,
    })
    .encrypt(recipient.publicKey);
}
