/**
 * Envelope encryption of provision secrets: seal, open, rewrap.
 * Invariants: every seal draws a fresh 256-bit data key that encrypts exactly one secret, and fresh
 * 96-bit nonces for each encryption; a data key never leaves this module unwrapped and is zeroed
 * after use; only the keyring's current KEK wraps; both layers authenticate the binding context,
 * so an envelope opens only for the group id and secret version it was sealed for.
 *
 * What JavaScript cannot promise (zeroing is best effort): strings (group ids) are immutable and
 * cannot be wiped; typed arrays of 64 bytes or less live on V8's heap, so the garbage collector may
 * leave stale copies of a data key when it moves them; noble leaves its key schedule to the
 * collector when a tag check fails; the plaintext returned by openSecret, and the one passed to
 * sealSecret, belong to the caller, who must zero them.
 */
import { AES_256_KEY_LENGTH_BYTES, GCM_NONCE_LENGTH_BYTES, aes256GcmDecrypt, aes256GcmEncrypt } from './aes-gcm';
import {
  type BindingContext,
  type EncodedBindingContext,
  encodeBindingContext,
  encodeDataKeyWrapAad,
  encodeSecretAad,
} from './binding-context';
import {
  ENVELOPE_FORMAT_V1,
  type EnvelopeV1,
  MAX_SECRET_LENGTH_BYTES,
  parseEnvelope,
  serializeEnvelopeV1,
} from './envelope-format';
import { SecretTooLargeError } from './errors';
import { type KeyEncryptionKey, kekIdFromBytes, kekIdToBytes } from './kek';
import type { Keyring } from './keyring';
import { needs } from './needs';
import { type RandomSource, drawRandomBytes, systemRandom } from './random';

export type { BindingContext } from './binding-context';

export interface SealedSecret {
  /** The bytes to store (format: docs/envelope-format.md). */
  readonly envelope: Uint8Array;
  /** The KEK that wrapped the data key; stored in its own indexed column so rotation can find rows. */
  readonly kekId: string;
  /** That KEK's version number at its source (Vault KV version), kept beside the id as a label. */
  readonly kekVersion: number | null;
}

/**
 * Encrypts `plaintext` (0..4096 bytes) for one group id and secret version under the current KEK.
 * Random draws, in this order (pinned by the known-answer test): data key (32), wrap nonce (12),
 * data nonce (12). The caller still owns `plaintext` and should zero it when done.
 */
export function sealSecret(
  plaintext: Uint8Array,
  context: BindingContext,
  keyring: Keyring,
  random: RandomSource = systemRandom,
): SealedSecret {
  // The format's length field and the per-row cost are sized for short provision secrets.
  needs(
    plaintext.length <= MAX_SECRET_LENGTH_BYTES,
    () => new SecretTooLargeError(`a secret must be at most ${MAX_SECRET_LENGTH_BYTES} bytes, got ${plaintext.length}`),
  );
  const boundContext = encodeBindingContext(context);
  const kek = keyring.current;

  const dataKey = drawRandomBytes(random, AES_256_KEY_LENGTH_BYTES);
  try {
    // An all-zero key means a broken random source; sealing under it would protect nothing.
    needs(
      dataKey.some((byte) => byte !== 0),
      () => new RangeError('the random source returned an all-zero data key'),
    );
    const wrapNonce = drawRandomBytes(random, GCM_NONCE_LENGTH_BYTES);
    const dataNonce = drawRandomBytes(random, GCM_NONCE_LENGTH_BYTES);
    const secretCiphertext = aes256GcmEncrypt(
      dataKey,
      dataNonce,
      plaintext,
      encodeSecretAad(ENVELOPE_FORMAT_V1, boundContext),
    );
    const { kekIdBytes, wrappedDataKey } = wrapDataKey(dataKey, wrapNonce, kek, boundContext);
    const envelope = serializeEnvelopeV1({
      formatVersion: ENVELOPE_FORMAT_V1,
      kekIdBytes,
      wrapNonce,
      wrappedDataKey,
      dataNonce,
      secretCiphertext,
    });
    return { envelope, kekId: kek.kekId, kekVersion: kek.kekVersion };
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Decrypts an envelope sealed for exactly this context. Throws MalformedEnvelopeError (bad bytes),
 * KekUnavailableError (KEK absent or retired) or DecryptionFailedError (tampered, or another row's).
 * The returned plaintext is a fresh buffer the caller must zero after use.
 */
export function openSecret(envelope: Uint8Array, context: BindingContext, keyring: Keyring): Uint8Array {
  const boundContext = encodeBindingContext(context);
  const parsed = parseEnvelope(envelope);
  const dataKey = unwrapDataKey(parsed, boundContext, keyring);
  try {
    return aes256GcmDecrypt(
      dataKey,
      parsed.dataNonce,
      parsed.secretCiphertext,
      encodeSecretAad(parsed.formatVersion, boundContext),
    );
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Moves an envelope to the keyring's current KEK: unwraps only the data key and wraps it again
 * under a fresh nonce. The data nonce and secret ciphertext are copied byte for byte; the secret
 * is never decrypted, so a damaged secret ciphertext is carried over and detected at open time.
 */
export function rewrapEnvelope(
  envelope: Uint8Array,
  context: BindingContext,
  keyring: Keyring,
  random: RandomSource = systemRandom,
): SealedSecret {
  const boundContext = encodeBindingContext(context);
  const parsed = parseEnvelope(envelope);
  const kek = keyring.current;
  const dataKey = unwrapDataKey(parsed, boundContext, keyring);
  try {
    const wrapNonce = drawRandomBytes(random, GCM_NONCE_LENGTH_BYTES);
    const { kekIdBytes, wrappedDataKey } = wrapDataKey(dataKey, wrapNonce, kek, boundContext);
    const rewrapped = serializeEnvelopeV1({ ...parsed, kekIdBytes, wrapNonce, wrappedDataKey });
    return { envelope: rewrapped, kekId: kek.kekId, kekVersion: kek.kekVersion };
  } finally {
    dataKey.fill(0);
  }
}

/** The id of the KEK an envelope names, from its header alone (no key needed, nothing decrypted). */
export function readEnvelopeKekId(envelope: Uint8Array): string {
  return kekIdFromBytes(parseEnvelope(envelope).kekIdBytes);
}

function wrapDataKey(
  dataKey: Uint8Array,
  wrapNonce: Uint8Array,
  kek: KeyEncryptionKey,
  boundContext: EncodedBindingContext,
) {
  const kekIdBytes = kekIdToBytes(kek.kekId);
  const wrappedDataKey = aes256GcmEncrypt(
    kek.key,
    wrapNonce,
    dataKey,
    encodeDataKeyWrapAad(ENVELOPE_FORMAT_V1, boundContext, kekIdBytes),
  );
  return { kekIdBytes, wrappedDataKey };
}

/** The data key of a parsed envelope, or KekUnavailableError / DecryptionFailedError. The caller zeroes it. */
function unwrapDataKey(parsed: EnvelopeV1, boundContext: EncodedBindingContext, keyring: Keyring): Uint8Array {
  // The header names the KEK, so the keyring never tries keys in turn (fails closed if absent or retired).
  const kek = keyring.decryptionKey(kekIdFromBytes(parsed.kekIdBytes));
  return aes256GcmDecrypt(
    kek.key,
    parsed.wrapNonce,
    parsed.wrappedDataKey,
    encodeDataKeyWrapAad(parsed.formatVersion, boundContext, parsed.kekIdBytes),
  );
}
