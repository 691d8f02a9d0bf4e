// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { InvalidKeyringError, KekUnavailableError } from '../../src/crypto/errors';
import { importKek, importKekFromHex } from '../../src/crypto/kek';
import { Keyring } from '../../src/crypto/keyring';

const kek1 = importKek(randomBytes(32), 1);
const kek2 = importKek(randomBytes(32), 2);
const kek3 = importKek(randomBytes(32), 3);

describe('Keyring.create', () => {
  test('two entries with one id would make "which key opened this row" ambiguous: duplicates are refused', () => {
    expect(() => Keyring.create([kek1, kek1], kek1.kekId)).toThrow(InvalidKeyringError);
    // The same key from two sources (hex file and raw bytes) has one id, so it counts as a duplicate.
    const hex = Buffer.from(kek2.key).toString('hex');
    expect(() => Keyring.create([kek2, importKekFromHex(hex.toUpperCase(), 7)], kek2.kekId)).toThrow(
      InvalidKeyringError,
    );
  });

  test('exactly one current KEK: it must be one of the keyring keys', () => {
    expect(() => Keyring.create([kek1, kek2], kek3.kekId)).toThrow(
      new InvalidKeyringError('the current KEK must be one of the keyring keys'),
    );
    expect(() => Keyring.create([], kek1.kekId)).toThrow(InvalidKeyringError);
  });

  test('the current KEK cannot be retired', () => {
    expect(() => Keyring.create([kek1, kek2], kek2.kekId, [kek2.kekId])).toThrow(InvalidKeyringError);
  });

  test('single() holds one current key', () => {
    const keyring = Keyring.single(kek1);
    expect(keyring.current.kekId).toBe(kek1.kekId);
    expect(keyring.entries().map((entry) => entry.kekId)).toEqual([kek1.kekId]);
  });
});

describe('Keyring.decryptionKey', () => {
  const keyring = Keyring.create([kek1, kek2, kek3], kek3.kekId, [kek1.kekId]);

  test('any present, non-retired KEK decrypts, the current one included', () => {
    expect(keyring.decryptionKey(kek2.kekId).key).toEqual(kek2.key);
    expect(keyring.decryptionKey(kek3.kekId).key).toEqual(kek3.key);
    expect(keyring.has(kek2.kekId)).toBe(true);
  });

  test('an absent KEK fails closed with KekUnavailableError naming the id', () => {
    const absentId = importKek(randomBytes(32)).kekId;
    expect(() => keyring.decryptionKey(absentId)).toThrow(KekUnavailableError);
    expect(() => keyring.decryptionKey(absentId)).toThrow(expect.objectContaining({ kekId: absentId }));
    expect(keyring.has(absentId)).toBe(false);
  });

  test('a retired KEK stays listed but refuses to decrypt', () => {
    expect(() => keyring.decryptionKey(kek1.kekId)).toThrow(
      new KekUnavailableError(`KEK ${kek1.kekId} is retired`, kek1.kekId),
    );
    expect(keyring.has(kek1.kekId)).toBe(false);
    expect(keyring.entries().find((entry) => entry.kekId === kek1.kekId)?.retired).toBe(true);
  });
});

describe('Keyring.sameAs', () => {
  const base = Keyring.create([kek1, kek2], kek2.kekId);

  test('a reload with the same keys, current and retirement is the same', () => {
    expect(base.sameAs(Keyring.create([kek2, kek1], kek2.kekId))).toBe(true);
  });

  test('another current, retirement, version label or key set is a change', () => {
    expect(base.sameAs(Keyring.create([kek1, kek2], kek1.kekId))).toBe(false);
    expect(base.sameAs(Keyring.create([kek1, kek2], kek2.kekId, [kek1.kekId]))).toBe(false);
    expect(base.sameAs(Keyring.create([importKek(kek1.key, 9), kek2], kek2.kekId))).toBe(false);
    expect(base.sameAs(Keyring.create([kek1, kek2, kek3], kek2.kekId))).toBe(false);
    expect(base.sameAs(Keyring.single(kek2))).toBe(false);
  });
});
