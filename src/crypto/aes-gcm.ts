/**
 * AES-256-GCM, the one authenticated cipher of the envelope (both layers), from @noble/ciphers.
 * Invariants: keys are exactly 256 bits, nonces exactly 96 bits, tags exactly 128 bits, and
 * associated data is part of every call (never optional, the Tink habit); a failed tag surfaces
 * as DecryptionFailedError and never as a library exception or partial plaintext.
 */
import { gcm } from '@noble/ciphers/aes';
import { DecryptionFailedError } from './errors';
import { needs } from './needs';

export const AES_256_KEY_LENGTH_BYTES = 32;
/** 96 bits: the length NIST SP 800-38D section 8.2 recommends; other lengths go through GHASH. */
export const GCM_NONCE_LENGTH_BYTES = 12;
/** 128 bits: the full tag; truncated tags weaken forgery resistance (SP 800-38D appendix C). */
export const GCM_TAG_LENGTH_BYTES = 16;

/**
 * Encrypts and returns `ciphertext || tag` (plaintext length + 16 bytes).
 * The caller guarantees the (key, nonce) pair is never used twice: here every nonce is fresh
 * from the CSPRNG and every data key is used for one encryption only.
 */
export function aes256GcmEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  associatedData: Uint8Array,
): Uint8Array {
  checkKeyAndNonce(key, nonce);
  return gcm(key, nonce, associatedData).encrypt(plaintext);
}

/**
 * Verifies the tag, then decrypts `ciphertext || tag`. Any failure (short input, wrong key,
 * wrong nonce, wrong associated data, altered byte) is a DecryptionFailedError.
 * Memory note: when the tag fails, noble throws before wiping its expanded key schedule and
 * GHASH key; those arrays are unreachable afterwards and left to the garbage collector.
 */
export function aes256GcmDecrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertextWithTag: Uint8Array,
  associatedData: Uint8Array,
): Uint8Array {
  checkKeyAndNonce(key, nonce);
  // Shorter than a tag cannot be authentic; say so in our own words rather than noble's.
  needs(
    ciphertextWithTag.length >= GCM_TAG_LENGTH_BYTES,
    () => new DecryptionFailedError('ciphertext is shorter than the authentication tag'),
  );
  try {
    return gcm(key, nonce, associatedData).decrypt(ciphertextWithTag);
  } catch {
    // Inputs are validated above, so the only failure left is the tag check. The library's
    // message is dropped on purpose: callers get one error class for every authentication failure.
    throw new DecryptionFailedError('authentication tag does not match');
  }
}

// Key and nonce sizes are fixed by this module, never by stored data: a mismatch is our own bug,
// hence RangeError (an internal error), not a typed caller or data error.
function checkKeyAndNonce(key: Uint8Array, nonce: Uint8Array): void {
  // noble also accepts 128- and 192-bit keys; a short key here would silently weaken the cipher.
  needs(
    key.length === AES_256_KEY_LENGTH_BYTES,
    () => new RangeError(`AES-256-GCM needs a ${AES_256_KEY_LENGTH_BYTES}-byte key, got ${key.length}`),
  );
  // Only 96-bit nonces use the counter directly; other lengths change GCM's security bounds.
  needs(
    nonce.length === GCM_NONCE_LENGTH_BYTES,
    () => new RangeError(`AES-256-GCM needs a ${GCM_NONCE_LENGTH_BYTES}-byte nonce, got ${nonce.length}`),
  );
}
