import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { MAX_GROUP_ID_CODE_POINTS, MAX_SECRET_VERSION } from '../../src/crypto/binding-context';
import {
  type BindingContext,
  openSecret,
  readEnvelopeKekId,
  rewrapEnvelope,
  sealSecret,
} from '../../src/crypto/envelope';
import { MAX_SECRET_LENGTH_BYTES } from '../../src/crypto/envelope-format';
import {
  DecryptionFailedError,
  InvalidBindingContextError,
  KekUnavailableError,
  MalformedEnvelopeError,
  SecretTooLargeError,
} from '../../src/crypto/errors';
import { importKek, importKekFromHex } from '../../src/crypto/kek';
import { Keyring } from '../../src/crypto/keyring';
import type { RandomSource } from '../../src/crypto/random';

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const asciiHex = (text: string): string => Buffer.from(text, 'utf8').toString('hex');

/** Hands out the given byte strings in order, refusing any other length: pins every random draw. */
function scriptedRandom(draws: Uint8Array[]): RandomSource {
  const queue = [...draws];
  return {
    randomBytes(length) {
      const next = queue.shift();
      if (!next || next.length !== length) throw new Error(`unexpected random draw of ${length} bytes`);
      return next;
    },
  };
}
const counting = (start: number, length: number): Uint8Array =>
  Uint8Array.from({ length }, (_, index) => (start + index) & 0xff);

const kekA = importKek(randomBytes(32), 1);
const kekB = importKek(randomBytes(32), 2);
const keyringA = Keyring.single(kekA);
const keyringB = Keyring.single(kekB);
const keyringAB = Keyring.create([kekA, kekB], kekB.kekId); // rotation in progress: B current, A still decrypts
const keyringAretired = Keyring.create([kekA, kekB], kekB.kekId, [kekA.kekId]);
const context: BindingContext = { groupId: 'ota-group-0001', secretVersion: 1 };

const secretArbitrary = fc.uint8Array({ minLength: 0, maxLength: MAX_SECRET_LENGTH_BYTES });
const contextArbitrary = fc.record({
  groupId: fc.string({ unit: 'binary', minLength: 1, maxLength: MAX_GROUP_ID_CODE_POINTS }),
  secretVersion: fc.integer({ min: 1, max: MAX_SECRET_VERSION }),
});

describe('known answer: format v1 with a fixed KEK and scripted random bytes', () => {
  const kek = importKekFromHex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 7);
  const dataKey = counting(0x40, 32);
  const wrapNonce = counting(0xa0, 12);
  const dataNonce = counting(0xb0, 12);
  const secret = Buffer.from('provision-secret-0001', 'utf8');
  const EXPECTED_ENVELOPE_HEX = [
    '01', // format version
    '355a707b8b69343987f00c2f34d6ef3d', // KEK id
    'a0a1a2a3a4a5a6a7a8a9aaab', // wrap nonce
    'a6593e6e018e44f82a2ccd984b378e9120fd0b43c6e2143bc4577cdd23f62b5e845326e50717a15aeddd57f5f1160397', // wrapped data key + tag
    'b0b1b2b3b4b5b6b7b8b9babb', // data nonce
    '0025', // secret ciphertext length
    '7372eff3a83982f655c3549d8e8429bf9338b418751b70fc703ce67a2d360a9f9c899b8462', // secret ciphertext + tag
  ].join('');

  const sealed = sealSecret(
    secret,
    context,
    Keyring.single(kek),
    scriptedRandom([Uint8Array.from(dataKey), Uint8Array.from(wrapNonce), Uint8Array.from(dataNonce)]),
  );

  test('the envelope bytes are exactly the pinned v1 bytes', () => {
    expect(toHex(sealed.envelope)).toBe(EXPECTED_ENVELOPE_HEX);
    expect(sealed.kekId).toBe(kek.kekId);
    expect(sealed.kekVersion).toBe(7);
  });

  test('node:crypto, given the spec in docs/envelope-format.md, builds the same bytes (independent check)', () => {
    const kekIdHex = createHmac('sha256', kek.key).update('provsec/kek-id/v1').digest('hex').slice(0, 32);
    const contextHex = '000e' + asciiHex('ota-group-0001') + '00000001';
    const prefix = '0018' + asciiHex('provsec/envelope-binding') + '01';
    const secretAad = prefix + '0006' + asciiHex('secret') + contextHex;
    const wrapAad = prefix + '000d' + asciiHex('data-key-wrap') + contextHex + '0010' + kekIdHex;
    const gcmEncrypt = (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aadHex: string): string => {
      const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.from(aadHex, 'hex'));
      return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]).toString('hex');
    };
    const secretCiphertextHex = gcmEncrypt(dataKey, dataNonce, secret, secretAad);
    const expected =
      '01' +
      kekIdHex +
      toHex(wrapNonce) +
      gcmEncrypt(kek.key, wrapNonce, dataKey, wrapAad) +
      toHex(dataNonce) +
      '0025' +
      secretCiphertextHex;
    expect(toHex(sealed.envelope)).toBe(expected);
  });

  test('the pinned envelope opens to the secret', () => {
    expect(
      Buffer.from(openSecret(Buffer.from(EXPECTED_ENVELOPE_HEX, 'hex'), context, Keyring.single(kek))).toString('utf8'),
    ).toBe('provision-secret-0001');
  });
});

describe('sealSecret and openSecret', () => {
  test('round trip for any secret of 0..4096 bytes and any valid group id and version (numRuns 300)', () => {
    fc.assert(
      fc.property(secretArbitrary, contextArbitrary, (secret, anyContext) => {
        const sealed = sealSecret(secret, anyContext, keyringAB);
        expect(sealed.kekId).toBe(kekB.kekId);
        expect(sealed.kekVersion).toBe(2);
        expect(readEnvelopeKekId(sealed.envelope)).toBe(kekB.kekId);
        expect(toHex(openSecret(sealed.envelope, anyContext, keyringAB))).toBe(toHex(secret));
      }),
      { numRuns: 300 },
    );
  });

  test('the empty secret and the largest secret (4096 bytes) round trip', () => {
    for (const secret of [new Uint8Array(0), randomBytes(MAX_SECRET_LENGTH_BYTES)]) {
      expect(toHex(openSecret(sealSecret(secret, context, keyringA).envelope, context, keyringA))).toBe(toHex(secret));
    }
  });

  test('two envelopes of one secret share no random field: fresh data key and nonces each time (numRuns 200)', () => {
    fc.assert(
      fc.property(secretArbitrary, contextArbitrary, (secret, anyContext) => {
        const first = sealSecret(secret, anyContext, keyringA).envelope;
        const second = sealSecret(secret, anyContext, keyringA).envelope;
        expect(toHex(first.subarray(0, 17))).toBe(toHex(second.subarray(0, 17))); // version + KEK id
        for (const [start, end] of [
          [17, 29],
          [29, 77],
          [77, 89],
          [91, first.length],
        ] as const) {
          expect(toHex(first.subarray(start, end))).not.toBe(toHex(second.subarray(start, end)));
        }
      }),
      { numRuns: 200 },
    );
  });

  test('the data key is zeroed once the envelope is sealed', () => {
    const dataKey = counting(1, 32);
    sealSecret(Buffer.from('secret'), context, keyringA, scriptedRandom([dataKey, counting(2, 12), counting(3, 12)]));
    expect(dataKey.every((byte) => byte === 0)).toBe(true);
  });

  test('a secret longer than the format allows is SecretTooLargeError', () => {
    expect(() => sealSecret(new Uint8Array(MAX_SECRET_LENGTH_BYTES + 1), context, keyringA)).toThrow(
      SecretTooLargeError,
    );
  });

  test('an invalid binding context is refused by seal and open alike', () => {
    const envelope = sealSecret(Buffer.from('secret'), context, keyringA).envelope;
    for (const bad of [
      { groupId: '', secretVersion: 1 },
      { groupId: 'g', secretVersion: 0 },
      { groupId: 'g'.repeat(129), secretVersion: 1 },
    ]) {
      expect(() => sealSecret(Buffer.from('secret'), bad, keyringA)).toThrow(InvalidBindingContextError);
      expect(() => openSecret(envelope, bad, keyringA)).toThrow(InvalidBindingContextError);
    }
  });

  test('an all-zero data key means a broken random source; sealing under it would protect nothing', () => {
    expect(() => sealSecret(Buffer.from('secret'), context, keyringA, scriptedRandom([new Uint8Array(32)]))).toThrow(
      RangeError,
    );
    expect(() =>
      sealSecret(Buffer.from('secret'), context, keyringA, {
        randomBytes: (length) => new Uint8Array(length - 1).fill(1),
      }),
    ).toThrow(RangeError);
  });
});

describe('tampering and the binding context', () => {
  const secret = Buffer.from('0123456789abcdef'.repeat(4)); // 64 bytes
  const envelope = sealSecret(secret, context, keyringA).envelope;

  /** Which error a flip in each region must raise: parse, key lookup, or authentication. */
  function expectedErrorForByte(
    byteIndex: number,
  ): typeof MalformedEnvelopeError | typeof KekUnavailableError | typeof DecryptionFailedError {
    if (byteIndex === 0 || byteIndex === 89 || byteIndex === 90) return MalformedEnvelopeError; // version, length field
    if (byteIndex >= 1 && byteIndex < 17) return KekUnavailableError; // names a KEK the keyring lacks
    return DecryptionFailedError;
  }

  test(`flipping each of the ${envelope.length * 8} bits of one envelope makes opening fail with the right error (exhaustive)`, () => {
    for (let bit = 0; bit < envelope.length * 8; bit++) {
      const tampered = Uint8Array.from(envelope);
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      expect(() => openSecret(tampered, context, keyringA)).toThrow(expectedErrorForByte(bit >> 3));
    }
  });

  test('flipping any single bit of any envelope makes opening fail (numRuns 1000)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), contextArbitrary, fc.nat(), (anySecret, anyContext, bitSeed) => {
        const tampered = sealSecret(anySecret, anyContext, keyringA).envelope;
        const bit = bitSeed % (tampered.length * 8);
        tampered[bit >> 3]! ^= 1 << (bit & 7);
        expect(() => openSecret(tampered, anyContext, keyringA)).toThrow(expectedErrorForByte(bit >> 3));
      }),
      { numRuns: 1000 },
    );
  });

  test('a changed group id, secret version, or both makes opening fail: no envelope moves to another row (numRuns 300)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 256 }),
        contextArbitrary,
        contextArbitrary,
        (anySecret, sealedFor, presentedFor) => {
          const sealed = sealSecret(anySecret, sealedFor, keyringA).envelope;
          const otherGroup = { groupId: presentedFor.groupId, secretVersion: sealedFor.secretVersion };
          const otherVersion = { groupId: sealedFor.groupId, secretVersion: presentedFor.secretVersion };
          for (const wrongContext of [otherGroup, otherVersion, presentedFor]) {
            if (wrongContext.groupId === sealedFor.groupId && wrongContext.secretVersion === sealedFor.secretVersion)
              continue;
            expect(() => openSecret(sealed, wrongContext, keyringA)).toThrow(DecryptionFailedError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('neighbouring versions and look-alike group ids fail too', () => {
    for (const wrongContext of [
      { groupId: context.groupId, secretVersion: 2 },
      { groupId: 'ota-group-0002', secretVersion: 1 },
      { groupId: 'OTA-GROUP-0001', secretVersion: 1 },
      { groupId: 'ota-group-0001 ', secretVersion: 1 },
    ]) {
      expect(() => openSecret(envelope, wrongContext, keyringA)).toThrow(DecryptionFailedError);
    }
  });

  test('error messages carry no plaintext or key bytes', () => {
    const tampered = Uint8Array.from(envelope);
    tampered[tampered.length - 1]! ^= 1;
    const message = (() => {
      try {
        openSecret(tampered, context, keyringA);
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })();
    expect(message).toBe('authentication tag does not match');
  });
});

describe('KEK selection', () => {
  test('an absent, retired or wrong KEK fails: KekUnavailableError when the keyring lacks it, DecryptionFailedError for a wrong key (numRuns 100)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), contextArbitrary, (anySecret, anyContext) => {
        const envelope = sealSecret(anySecret, anyContext, keyringA).envelope;
        expect(() => openSecret(envelope, anyContext, keyringB)).toThrow(KekUnavailableError); // absent
        expect(() => openSecret(envelope, anyContext, keyringAretired)).toThrow(KekUnavailableError); // retired
        // The header made to name B: B's key cannot unwrap a data key that A wrapped.
        const misnamed = Uint8Array.from(envelope);
        misnamed.set(Buffer.from(kekB.kekId.slice(4), 'hex'), 1);
        expect(() => openSecret(misnamed, anyContext, keyringAB)).toThrow(DecryptionFailedError);
        expect(toHex(openSecret(envelope, anyContext, keyringAB))).toBe(toHex(anySecret)); // A still decrypts while present
      }),
      { numRuns: 100 },
    );
  });

  test('only the current KEK seals', () => {
    expect(sealSecret(Buffer.from('s'), context, keyringAB).kekId).toBe(kekB.kekId);
    expect(sealSecret(Buffer.from('s'), context, keyringAretired).kekId).toBe(kekB.kekId);
  });

  test('readEnvelopeKekId reads the header only and rejects malformed bytes', () => {
    expect(readEnvelopeKekId(sealSecret(Buffer.from('s'), context, keyringA).envelope)).toBe(kekA.kekId);
    expect(() => readEnvelopeKekId(new Uint8Array(20))).toThrow(MalformedEnvelopeError);
  });
});

describe('rewrapEnvelope', () => {
  test('moves the data key to the current KEK, keeps the secret ciphertext byte-identical, and each envelope opens only where it should (numRuns 200)', () => {
    fc.assert(
      fc.property(secretArbitrary, contextArbitrary, (anySecret, anyContext) => {
        const original = sealSecret(anySecret, anyContext, keyringA).envelope;
        const before = Uint8Array.from(original);
        const rewrapped = rewrapEnvelope(original, anyContext, keyringAB);
        expect(toHex(original)).toBe(toHex(before)); // input untouched
        expect(rewrapped.kekId).toBe(kekB.kekId);
        expect(rewrapped.kekVersion).toBe(2);
        expect(readEnvelopeKekId(rewrapped.envelope)).toBe(kekB.kekId);
        // Data nonce, length field and secret ciphertext + tag: copied, never re-encrypted.
        expect(toHex(rewrapped.envelope.subarray(77))).toBe(toHex(original.subarray(77)));
        expect(toHex(rewrapped.envelope.subarray(17, 77))).not.toBe(toHex(original.subarray(17, 77)));
        // The new envelope opens under B alone, and no longer under A alone.
        expect(toHex(openSecret(rewrapped.envelope, anyContext, keyringB))).toBe(toHex(anySecret));
        expect(() => openSecret(rewrapped.envelope, anyContext, keyringA)).toThrow(KekUnavailableError);
        // The old envelope still opens with the old KEK (rows not yet rewritten keep working).
        expect(toHex(openSecret(original, anyContext, keyringA))).toBe(toHex(anySecret));
      }),
      { numRuns: 200 },
    );
  });

  test('never decrypts the secret: a damaged secret ciphertext is carried over and only fails at open', () => {
    const damaged = sealSecret(Buffer.from('secret'), context, keyringA).envelope;
    damaged[damaged.length - 1]! ^= 0x80;
    const rewrapped = rewrapEnvelope(damaged, context, keyringAB);
    expect(toHex(rewrapped.envelope.subarray(77))).toBe(toHex(damaged.subarray(77)));
    expect(() => openSecret(rewrapped.envelope, context, keyringAB)).toThrow(DecryptionFailedError);
  });

  test('cannot move an envelope to another row: the wrong context fails to unwrap', () => {
    const envelope = sealSecret(Buffer.from('secret'), context, keyringA).envelope;
    expect(() => rewrapEnvelope(envelope, { ...context, secretVersion: 2 }, keyringAB)).toThrow(DecryptionFailedError);
    expect(() => rewrapEnvelope(envelope, { ...context, groupId: 'ota-group-0002' }, keyringAB)).toThrow(
      DecryptionFailedError,
    );
  });

  test('an envelope under a retired or absent KEK cannot be rewrapped', () => {
    const envelope = sealSecret(Buffer.from('secret'), context, keyringA).envelope;
    expect(() => rewrapEnvelope(envelope, context, keyringAretired)).toThrow(KekUnavailableError);
    expect(() => rewrapEnvelope(envelope, context, keyringB)).toThrow(KekUnavailableError);
  });

  test('rewrapping under the same current KEK draws a fresh wrap nonce and still opens', () => {
    const envelope = sealSecret(Buffer.from('secret'), context, keyringA).envelope;
    const rewrapped = rewrapEnvelope(envelope, context, keyringA, scriptedRandom([counting(0xc0, 12)]));
    expect(toHex(rewrapped.envelope.subarray(17, 29))).toBe(toHex(counting(0xc0, 12)));
    expect(Buffer.from(openSecret(rewrapped.envelope, context, keyringA)).toString()).toBe('secret');
  });
});
