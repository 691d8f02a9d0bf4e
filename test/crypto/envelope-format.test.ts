import fc from 'fast-check';
import {
  ENVELOPE_FORMAT_V1,
  ENVELOPE_V1_HEADER_LENGTH_BYTES,
  ENVELOPE_V1_MAX_LENGTH_BYTES,
  ENVELOPE_V1_MIN_LENGTH_BYTES,
  type EnvelopeV1,
  EnvelopeV1Offsets,
  MAX_SECRET_LENGTH_BYTES,
  parseEnvelope,
  serializeEnvelopeV1,
} from '../../src/crypto/envelope-format';
import { MalformedEnvelopeError } from '../../src/crypto/errors';

const filled = (length: number, value: number): Uint8Array => new Uint8Array(length).fill(value);
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function fields(secretCiphertextLength: number): EnvelopeV1 {
  return {
    formatVersion: ENVELOPE_FORMAT_V1,
    kekIdBytes: filled(16, 0x11),
    wrapNonce: filled(12, 0x22),
    wrappedDataKey: filled(48, 0x33),
    dataNonce: filled(12, 0x44),
    secretCiphertext: filled(secretCiphertextLength, 0x55),
  };
}

const sampleEnvelope = serializeEnvelopeV1(fields(64 + 16)); // a 64-byte secret
const largestEnvelope = serializeEnvelopeV1(fields(MAX_SECRET_LENGTH_BYTES + 16));
const smallestEnvelope = serializeEnvelopeV1(fields(16)); // an empty secret

describe('envelope v1 layout constants', () => {
  test('the format version byte is pinned to 1 (it is stored in every row; never renumber it)', () => {
    expect(ENVELOPE_FORMAT_V1).toBe(1);
  });

  test('field offsets and sizes are pinned (docs/envelope-format.md shows the same table)', () => {
    expect(EnvelopeV1Offsets).toEqual({
      formatVersion: 0,
      kekId: 1,
      wrapNonce: 17,
      wrappedDataKey: 29,
      dataNonce: 77,
      secretCiphertextLength: 89,
      secretCiphertext: 91,
    });
    expect(ENVELOPE_V1_HEADER_LENGTH_BYTES).toBe(91);
    expect(ENVELOPE_V1_MIN_LENGTH_BYTES).toBe(107);
    expect(ENVELOPE_V1_MAX_LENGTH_BYTES).toBe(4203);
    expect(MAX_SECRET_LENGTH_BYTES).toBe(4096);
  });

  test('serialization writes the fields in order with a big-endian u16 ciphertext length', () => {
    expect(toHex(sampleEnvelope)).toBe(
      '01' + '11'.repeat(16) + '22'.repeat(12) + '33'.repeat(48) + '44'.repeat(12) + '0050' + '55'.repeat(80),
    );
  });
});

describe('parseEnvelope', () => {
  test('parses back exactly the serialized fields, for every secret length 0..4096 (numRuns 300)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ minLength: 48, maxLength: 48 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ minLength: 16, maxLength: MAX_SECRET_LENGTH_BYTES + 16 }),
        (kekIdBytes, wrapNonce, wrappedDataKey, dataNonce, secretCiphertext) => {
          const original = {
            formatVersion: ENVELOPE_FORMAT_V1,
            kekIdBytes,
            wrapNonce,
            wrappedDataKey,
            dataNonce,
            secretCiphertext,
          } as const;
          const bytes = serializeEnvelopeV1(original);
          expect(bytes).toHaveLength(ENVELOPE_V1_HEADER_LENGTH_BYTES + secretCiphertext.length);
          const parsed = parseEnvelope(bytes);
          expect(parsed.formatVersion).toBe(1);
          for (const name of ['kekIdBytes', 'wrapNonce', 'wrappedDataKey', 'dataNonce', 'secretCiphertext'] as const) {
            expect(toHex(parsed[name])).toBe(toHex(original[name]));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test.each([
    ['smallest (empty secret)', smallestEnvelope],
    ['64-byte secret', sampleEnvelope],
    ['largest (4096-byte secret)', largestEnvelope],
  ])('every truncation of the %s envelope is MalformedEnvelopeError', (_label, envelope) => {
    for (let length = 0; length < envelope.length; length++) {
      expect(() => parseEnvelope(envelope.subarray(0, length))).toThrow(MalformedEnvelopeError);
    }
    expect(() => parseEnvelope(envelope)).not.toThrow();
  });

  test('appended bytes (1..64, of any value) are MalformedEnvelopeError, not ignored', () => {
    for (const envelope of [smallestEnvelope, sampleEnvelope, largestEnvelope]) {
      for (let extra = 1; extra <= 64; extra++) {
        const extended = new Uint8Array(envelope.length + extra);
        extended.set(envelope);
        extended.fill(extra, envelope.length);
        expect(() => parseEnvelope(extended)).toThrow(MalformedEnvelopeError);
      }
    }
    const oneTooMany = Uint8Array.of(...sampleEnvelope, 0);
    expect(() => parseEnvelope(oneTooMany)).toThrow('envelope has 1 unexpected trailing bytes');
  });

  test('every version byte other than 1 is MalformedEnvelopeError (unknown version)', () => {
    for (let version = 0; version <= 255; version++) {
      if (version === ENVELOPE_FORMAT_V1) continue;
      const altered = Uint8Array.from(sampleEnvelope);
      altered[0] = version;
      expect(() => parseEnvelope(altered)).toThrow(
        new MalformedEnvelopeError(`unknown envelope format version ${version}`),
      );
    }
  });

  test('a ciphertext length field outside 16..4112, or not matching the bytes present, is MalformedEnvelopeError', () => {
    for (const lengthField of [0, 1, 15, 79, 81, 4113, 0xffff]) {
      const altered = Uint8Array.from(sampleEnvelope);
      altered[89] = lengthField >>> 8;
      altered[90] = lengthField & 0xff;
      expect(() => parseEnvelope(altered)).toThrow(MalformedEnvelopeError);
    }
  });

  test('an empty input is MalformedEnvelopeError', () => {
    expect(() => parseEnvelope(new Uint8Array(0))).toThrow(new MalformedEnvelopeError('envelope is empty'));
  });

  test('parsed fields are views into the input, so parsing copies nothing', () => {
    const parsed = parseEnvelope(sampleEnvelope);
    expect(parsed.secretCiphertext.buffer).toBe(sampleEnvelope.buffer);
    expect(parsed.secretCiphertext.byteOffset).toBe(sampleEnvelope.byteOffset + 91);
  });
});

describe('serializeEnvelopeV1 refuses wrong field lengths (a bug in our code, not stored data)', () => {
  test.each([
    ['kekIdBytes', 15],
    ['wrapNonce', 16],
    ['wrappedDataKey', 32],
    ['dataNonce', 8],
    ['secretCiphertext', 15],
    ['secretCiphertext', MAX_SECRET_LENGTH_BYTES + 17],
  ] as const)('%s of %i bytes', (name, length) => {
    expect(() => serializeEnvelopeV1({ ...fields(80), [name]: new Uint8Array(length) })).toThrow(RangeError);
  });
});
