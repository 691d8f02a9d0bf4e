/**
 * The envelope's byte layout (format v1): pure serialization and parsing, no cryptography.
 * Invariants: an envelope names its own format version and KEK, so decryption never guesses; the
 * parser accepts exactly one length for each field and the exact total length, and rejects
 * anything else with MalformedEnvelopeError before any key is touched.
 * Layout and rationale: docs/envelope-format.md.
 */
import { AES_256_KEY_LENGTH_BYTES, GCM_NONCE_LENGTH_BYTES, GCM_TAG_LENGTH_BYTES } from './aes-gcm';
import { MalformedEnvelopeError } from './errors';
import { KEK_ID_LENGTH_BYTES } from './kek';
import { needs } from './needs';

/** Byte 0 of every v1 envelope. Stored in the database: never renumber it. */
export const ENVELOPE_FORMAT_V1 = 1;
/** Provision secrets are short; the bound keeps the length field and the work per row small. */
export const MAX_SECRET_LENGTH_BYTES = 4096;

export const WRAPPED_DATA_KEY_LENGTH_BYTES = AES_256_KEY_LENGTH_BYTES + GCM_TAG_LENGTH_BYTES;
const MIN_SECRET_CIPHERTEXT_LENGTH_BYTES = GCM_TAG_LENGTH_BYTES;
const MAX_SECRET_CIPHERTEXT_LENGTH_BYTES = MAX_SECRET_LENGTH_BYTES + GCM_TAG_LENGTH_BYTES;

/** Offsets of each v1 field; the docs table and the layout test must agree with these. */
export const EnvelopeV1Offsets = Object.freeze({
  formatVersion: 0,
  kekId: 1,
  wrapNonce: 1 + KEK_ID_LENGTH_BYTES, // 17
  wrappedDataKey: 1 + KEK_ID_LENGTH_BYTES + GCM_NONCE_LENGTH_BYTES, // 29
  dataNonce: 1 + KEK_ID_LENGTH_BYTES + GCM_NONCE_LENGTH_BYTES + WRAPPED_DATA_KEY_LENGTH_BYTES, // 77
  secretCiphertextLength: 1 + KEK_ID_LENGTH_BYTES + 2 * GCM_NONCE_LENGTH_BYTES + WRAPPED_DATA_KEY_LENGTH_BYTES, // 89
  secretCiphertext: 1 + KEK_ID_LENGTH_BYTES + 2 * GCM_NONCE_LENGTH_BYTES + WRAPPED_DATA_KEY_LENGTH_BYTES + 2, // 91
});
export const ENVELOPE_V1_HEADER_LENGTH_BYTES = EnvelopeV1Offsets.secretCiphertext;
export const ENVELOPE_V1_MIN_LENGTH_BYTES = ENVELOPE_V1_HEADER_LENGTH_BYTES + MIN_SECRET_CIPHERTEXT_LENGTH_BYTES;
export const ENVELOPE_V1_MAX_LENGTH_BYTES = ENVELOPE_V1_HEADER_LENGTH_BYTES + MAX_SECRET_CIPHERTEXT_LENGTH_BYTES;

/** The fields of a v1 envelope. Parsed fields are views into the parsed bytes, not copies. */
export interface EnvelopeV1 {
  readonly formatVersion: typeof ENVELOPE_FORMAT_V1;
  /** The wrapping KEK's id, raw (see kek.ts `kekIdFromBytes`). */
  readonly kekIdBytes: Uint8Array;
  readonly wrapNonce: Uint8Array;
  /** The data key encrypted under the KEK, with its tag. */
  readonly wrappedDataKey: Uint8Array;
  readonly dataNonce: Uint8Array;
  /** The secret encrypted under the data key, with its tag. */
  readonly secretCiphertext: Uint8Array;
}

/** Writes the fields in v1 order. Wrong field lengths are a bug in our code, hence RangeError. */
export function serializeEnvelopeV1(envelope: EnvelopeV1): Uint8Array {
  const { kekIdBytes, wrapNonce, wrappedDataKey, dataNonce, secretCiphertext } = envelope;
  needs(kekIdBytes.length === KEK_ID_LENGTH_BYTES, () => new RangeError('KEK id has the wrong length'));
  needs(
    wrapNonce.length === GCM_NONCE_LENGTH_BYTES && dataNonce.length === GCM_NONCE_LENGTH_BYTES,
    () => new RangeError('nonce has the wrong length'),
  );
  needs(
    wrappedDataKey.length === WRAPPED_DATA_KEY_LENGTH_BYTES,
    () => new RangeError('wrapped data key has the wrong length'),
  );
  needs(
    secretCiphertext.length >= MIN_SECRET_CIPHERTEXT_LENGTH_BYTES &&
      secretCiphertext.length <= MAX_SECRET_CIPHERTEXT_LENGTH_BYTES,
    () => new RangeError('secret ciphertext has the wrong length'),
  );

  const bytes = new Uint8Array(ENVELOPE_V1_HEADER_LENGTH_BYTES + secretCiphertext.length);
  bytes[EnvelopeV1Offsets.formatVersion] = ENVELOPE_FORMAT_V1;
  bytes.set(kekIdBytes, EnvelopeV1Offsets.kekId);
  bytes.set(wrapNonce, EnvelopeV1Offsets.wrapNonce);
  bytes.set(wrappedDataKey, EnvelopeV1Offsets.wrappedDataKey);
  bytes.set(dataNonce, EnvelopeV1Offsets.dataNonce);
  bytes[EnvelopeV1Offsets.secretCiphertextLength] = secretCiphertext.length >>> 8;
  bytes[EnvelopeV1Offsets.secretCiphertextLength + 1] = secretCiphertext.length & 0xff;
  bytes.set(secretCiphertext, EnvelopeV1Offsets.secretCiphertext);
  return bytes;
}

/** Splits stored bytes into fields, or throws MalformedEnvelopeError. Touches no key. */
export function parseEnvelope(bytes: Uint8Array): EnvelopeV1 {
  needs(bytes instanceof Uint8Array && bytes.length > 0, () => new MalformedEnvelopeError('envelope is empty'));
  // A version we do not know might put its fields anywhere; guessing would be unsafe.
  needs(
    bytes[EnvelopeV1Offsets.formatVersion] === ENVELOPE_FORMAT_V1,
    () => new MalformedEnvelopeError(`unknown envelope format version ${bytes[0]}`),
  );
  needs(
    bytes.length >= ENVELOPE_V1_HEADER_LENGTH_BYTES,
    () => new MalformedEnvelopeError(`envelope is truncated: ${bytes.length} bytes is shorter than the v1 header`),
  );

  const secretCiphertextLength =
    (bytes[EnvelopeV1Offsets.secretCiphertextLength]! << 8) | bytes[EnvelopeV1Offsets.secretCiphertextLength + 1]!;
  // Every ciphertext carries a full tag, and no secret exceeds the format's maximum.
  needs(
    secretCiphertextLength >= MIN_SECRET_CIPHERTEXT_LENGTH_BYTES &&
      secretCiphertextLength <= MAX_SECRET_CIPHERTEXT_LENGTH_BYTES,
    () =>
      new MalformedEnvelopeError(
        `secret ciphertext length ${secretCiphertextLength} is outside ${MIN_SECRET_CIPHERTEXT_LENGTH_BYTES}..${MAX_SECRET_CIPHERTEXT_LENGTH_BYTES}`,
      ),
  );
  const expectedLength = ENVELOPE_V1_HEADER_LENGTH_BYTES + secretCiphertextLength;
  // The exact length, both ways: a cut or an appended byte is damage, never something to skip.
  needs(
    bytes.length >= expectedLength,
    () => new MalformedEnvelopeError(`envelope is truncated: ${bytes.length} of ${expectedLength} bytes`),
  );
  needs(
    bytes.length <= expectedLength,
    () => new MalformedEnvelopeError(`envelope has ${bytes.length - expectedLength} unexpected trailing bytes`),
  );

  return {
    formatVersion: ENVELOPE_FORMAT_V1,
    kekIdBytes: bytes.subarray(EnvelopeV1Offsets.kekId, EnvelopeV1Offsets.wrapNonce),
    wrapNonce: bytes.subarray(EnvelopeV1Offsets.wrapNonce, EnvelopeV1Offsets.wrappedDataKey),
    wrappedDataKey: bytes.subarray(EnvelopeV1Offsets.wrappedDataKey, EnvelopeV1Offsets.dataNonce),
    dataNonce: bytes.subarray(EnvelopeV1Offsets.dataNonce, EnvelopeV1Offsets.secretCiphertextLength),
    secretCiphertext: bytes.subarray(EnvelopeV1Offsets.secretCiphertext, expectedLength),
  };
}
