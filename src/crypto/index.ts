/**
 * The crypto module's public surface. Everything else in src/crypto (the AES-GCM call, AAD
 * encoding, byte layout) is internal: callers seal, open and rewrap, and never see a data key.
 */
export { openSecret, readEnvelopeKekId, rewrapEnvelope, sealSecret } from './envelope';
export type { BindingContext, SealedSecret } from './envelope';
export { MAX_GROUP_ID_CODE_POINTS, MAX_SECRET_VERSION } from './binding-context';
export { ENVELOPE_FORMAT_V1, MAX_SECRET_LENGTH_BYTES } from './envelope-format';
export { KEK_ID_LENGTH_BYTES, KEK_LENGTH_BYTES, importKek, importKekFromHex, isKekId } from './kek';
export type { KeyEncryptionKey } from './kek';
export { Keyring } from './keyring';
export type { KeyringEntry, PendingActivation } from './keyring';
export { encryptForRecipient, type SecretRecipient } from './recipient-jwe';
export { bufferedSystemRandom, systemRandom } from './random';
export type { RandomSource } from './random';
export {
  CryptoError,
  DecryptionFailedError,
  InvalidBindingContextError,
  InvalidKekError,
  InvalidKeyringError,
  InvalidRecipientKeyError,
  KekUnavailableError,
  MalformedEnvelopeError,
  SecretTooLargeError,
} from './errors';
