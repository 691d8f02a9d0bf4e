import * as crypto from '../../src/crypto';

test('the module exposes seal, open, rewrap and key handling, but no data-key or AES-GCM internals', () => {
  expect(Object.keys(crypto).sort()).toEqual(
    [
      'CryptoError',
      'DecryptionFailedError',
      'ENVELOPE_FORMAT_V1',
      'InvalidBindingContextError',
      'InvalidKekError',
      'InvalidKeyringError',
      'InvalidRecipientKeyError',
      'KEK_ID_LENGTH_BYTES',
      'KEK_LENGTH_BYTES',
      'KekUnavailableError',
      'Keyring',
      'MAX_GROUP_ID_CODE_POINTS',
      'MAX_SECRET_LENGTH_BYTES',
      'MAX_SECRET_VERSION',
      'MalformedEnvelopeError',
      'bufferedSystemRandom',
      'SecretTooLargeError',
      'encryptForRecipient',
      'importKek',
      'importKekFromHex',
      'isKekId',
      'openSecret',
      'readEnvelopeKekId',
      'rewrapEnvelope',
      'sealSecret',
      'systemRandom',
    ].sort(),
  );
});
