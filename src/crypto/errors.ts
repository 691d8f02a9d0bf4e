/**
 * The crypto module's own error classes. Messages never carry key or plaintext bytes, so callers
 * may log them as they are.
 */
export abstract class CryptoError extends Error {
  abstract readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A key offered as a KEK is unusable (wrong length, all zero, not hex). The caller's config is wrong. */
export class InvalidKekError extends CryptoError {
  readonly code = 'invalid_kek';
}

/** Stored bytes are not a well-formed envelope of a version we know. */
export class MalformedEnvelopeError extends CryptoError {
  readonly code = 'malformed_envelope';
}

/** The envelope names a KEK that the keyring does not hold (removed from the source, or retired). */
export class KekUnavailableError extends CryptoError {
  readonly code = 'kek_unavailable';
  constructor(
    message: string,
    readonly kekId: string,
  ) {
    super(message);
  }
}

/** Authentication failed: tampered bytes, a wrong key, or an envelope presented for another row. */
export class DecryptionFailedError extends CryptoError {
  readonly code = 'decryption_failed';
}

/** A keyring that breaks its own rules (no current key, duplicate ids). */
export class InvalidKeyringError extends CryptoError {
  readonly code = 'invalid_keyring';
}

/** The binding context (group id, secret version) breaks its rules. The caller's mistake (4xx). */
export class InvalidBindingContextError extends CryptoError {
  readonly code = 'invalid_binding_context';
}

/** A secret longer than the envelope format allows. The caller's mistake (4xx). */
export class SecretTooLargeError extends CryptoError {
  readonly code = 'secret_too_large';
}

/** A key offered as a worker's recipient key is not EC P-256 or X25519 public key material. */
export class InvalidRecipientKeyError extends CryptoError {
  readonly code = 'invalid_recipient_key';
}
