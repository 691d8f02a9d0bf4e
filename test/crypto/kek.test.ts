import { createHash, createHmac, randomBytes } from 'node:crypto';
import { InvalidKekError } from '../../src/crypto/errors';
import {
  KEK_ID_LENGTH_BYTES,
  KEK_LENGTH_BYTES,
  deriveKekId,
  importKek,
  importKekFromHex,
  isKekId,
  kekIdFromBytes,
  kekIdToBytes,
} from '../../src/crypto/kek';

const KEY_HEX = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const keyBytes = () => Uint8Array.from(Buffer.from(KEY_HEX, 'hex'));

describe('KEK validation', () => {
  test('a short or long key would silently change the cipher strength: 31 and 33 bytes are refused', () => {
    expect(() => importKek(new Uint8Array(31).fill(1))).toThrow(
      new InvalidKekError('a KEK must be exactly 32 bytes, got 31'),
    );
    expect(() => importKek(new Uint8Array(33).fill(1))).toThrow(
      new InvalidKekError('a KEK must be exactly 32 bytes, got 33'),
    );
    expect(() => importKek(new Uint8Array(0))).toThrow(InvalidKekError);
    expect(KEK_LENGTH_BYTES).toBe(32);
  });

  test('an all-zero key is the classic sign of an unset or failed render; it is refused', () => {
    expect(() => importKek(new Uint8Array(32))).toThrow(new InvalidKekError('a KEK must not be all zero bytes'));
    expect(() => importKekFromHex('0'.repeat(64))).toThrow(InvalidKekError);
  });

  test('hex input: only 64 hexadecimal digits, either case', () => {
    expect(() => importKekFromHex('g'.repeat(64))).toThrow(
      new InvalidKekError('a KEK must be written as hexadecimal digits'),
    );
    expect(() => importKekFromHex(`${KEY_HEX.slice(0, 62)} 1`)).toThrow(InvalidKekError);
    expect(() => importKekFromHex(`0x${KEY_HEX.slice(2)}`)).toThrow(InvalidKekError);
    expect(() => importKekFromHex(`${KEY_HEX}\n`)).toThrow(InvalidKekError);
    expect(() => importKekFromHex(KEY_HEX.slice(0, 62))).toThrow(
      new InvalidKekError('a KEK must be 64 hex digits, got 62'),
    );
    expect(() => importKekFromHex(`${KEY_HEX}00`)).toThrow(new InvalidKekError('a KEK must be 64 hex digits, got 66'));
    expect(() => importKekFromHex('')).toThrow(InvalidKekError);
  });

  test('error messages never echo the key material', () => {
    const almostKey = 'ab'.repeat(31) + 'zz';
    let rejection: unknown;
    try {
      importKekFromHex(almostKey);
    } catch (error) {
      rejection = error;
    }
    // Asserted after the try: a call that does not throw leaves `rejection` undefined and fails here.
    expect(rejection).toBeInstanceOf(InvalidKekError);
    expect((rejection as Error).message).not.toContain('abab');
  });

  test('the key bytes are copied, so a caller wiping its buffer does not change the KEK', () => {
    const source = keyBytes();
    const kek = importKek(source);
    source.fill(0);
    expect(Buffer.from(kek.key).toString('hex')).toBe(KEY_HEX);
    expect(Object.isFrozen(kek)).toBe(true);
  });
});

describe('KEK id', () => {
  test('is pinned for a known key (HMAC-SHA-256 keyed by the KEK over "provsec/kek-id/v1", first 16 bytes)', () => {
    expect(importKek(keyBytes()).kekId).toBe('kek_355a707b8b69343987f00c2f34d6ef3d');
    expect(createHmac('sha256', keyBytes()).update('provsec/kek-id/v1').digest('hex').slice(0, 32)).toBe(
      '355a707b8b69343987f00c2f34d6ef3d',
    );
  });

  test('one key has one id whichever form delivered it (raw bytes, lower- or upper-case hex, any version label)', () => {
    const ids = new Set([
      importKek(keyBytes()).kekId,
      importKek(keyBytes(), 9).kekId,
      importKekFromHex(KEY_HEX).kekId,
      importKekFromHex(KEY_HEX.toUpperCase(), 3).kekId,
    ]);
    expect(ids.size).toBe(1);
    expect(importKekFromHex(KEY_HEX, 3).kekVersion).toBe(3);
    expect(importKek(keyBytes()).kekVersion).toBeNull();
  });

  test('is neither the key bytes nor a bare SHA-256 of them', () => {
    for (let run = 0; run < 50; run++) {
      const key = randomBytes(32);
      const idHex = importKek(key).kekId.slice(4);
      expect(key.toString('hex')).not.toContain(idHex);
      expect(createHash('sha256').update(key).digest('hex')).not.toContain(idHex);
      expect(idHex).toBe(createHmac('sha256', key).update('provsec/kek-id/v1').digest('hex').slice(0, 32));
    }
  });

  test('different keys get different ids', () => {
    const ids = new Set(Array.from({ length: 200 }, () => importKek(randomBytes(32)).kekId));
    expect(ids.size).toBe(200);
  });

  test('has the form kek_ + 32 lower-case hex digits and converts to and from its 16 raw bytes', () => {
    const kekId = deriveKekId(keyBytes());
    expect(isKekId(kekId)).toBe(true);
    expect(isKekId(kekId.toUpperCase())).toBe(false);
    expect(isKekId('kek_1234')).toBe(false);
    const raw = kekIdToBytes(kekId);
    expect(raw).toHaveLength(KEK_ID_LENGTH_BYTES);
    expect(kekIdFromBytes(raw)).toBe(kekId);
  });
});
