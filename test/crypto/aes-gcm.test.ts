import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { aes256GcmDecrypt, aes256GcmEncrypt } from '../../src/crypto/aes-gcm';
import { DecryptionFailedError } from '../../src/crypto/errors';

/** Public vectors from C2SP/wycheproof `testvectors_v1/aes_gcm_test.json` (Apache-2.0). */
interface WycheproofAeadCase {
  tcId: number;
  comment: string;
  flags: string[];
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: 'valid' | 'invalid' | 'acceptable';
}
interface WycheproofAeadGroup {
  keySize: number;
  ivSize: number;
  tagSize: number;
  tests: WycheproofAeadCase[];
}

const WYCHEPROOF_FILE = join(__dirname, '../fixtures/reference/wycheproof/aes_gcm_test.json');
const EXPECTED_CASE_COUNT = 66; // the reference README's count for 256-bit keys and 96-bit IVs

const groups = (JSON.parse(readFileSync(WYCHEPROOF_FILE, 'utf8')) as { testGroups: WycheproofAeadGroup[] }).testGroups;
const cases = groups
  .filter((group) => group.keySize === 256 && group.ivSize === 96 && group.tagSize === 128)
  .flatMap((group) => group.tests);
const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('AES-256-GCM against Wycheproof (256-bit key, 96-bit IV, 128-bit tag)', () => {
  test(`the vector file holds exactly ${EXPECTED_CASE_COUNT} such cases, valid and invalid`, () => {
    const valid = cases.filter((testCase) => testCase.result === 'valid').length;
    const invalid = cases.filter((testCase) => testCase.result === 'invalid').length;
    console.log(
      `Wycheproof AES-GCM cases run through aes-gcm.ts: ${cases.length} (${valid} valid, ${invalid} invalid)`,
    );
    expect(cases).toHaveLength(EXPECTED_CASE_COUNT);
    expect(valid + invalid).toBe(EXPECTED_CASE_COUNT); // no "acceptable" cases left to interpret
  });

  test.each(
    cases
      .filter((testCase) => testCase.result === 'valid')
      .map((testCase) => [testCase.tcId, testCase.comment || testCase.flags.join(','), testCase] as const),
  )('tcId %i (%s): encrypts to the expected ciphertext and tag, and decrypts back', (_tcId, _label, testCase) => {
    const key = hex(testCase.key);
    const nonce = hex(testCase.iv);
    const associatedData = hex(testCase.aad);
    const sealed = aes256GcmEncrypt(key, nonce, hex(testCase.msg), associatedData);
    expect(toHex(sealed)).toBe(testCase.ct + testCase.tag);
    expect(toHex(aes256GcmDecrypt(key, nonce, hex(testCase.ct + testCase.tag), associatedData))).toBe(testCase.msg);
  });

  test.each(
    cases
      .filter((testCase) => testCase.result === 'invalid')
      .map((testCase) => [testCase.tcId, testCase.comment || testCase.flags.join(','), testCase] as const),
  )('tcId %i (%s): decryption fails with DecryptionFailedError', (_tcId, _label, testCase) => {
    expect(() =>
      aes256GcmDecrypt(hex(testCase.key), hex(testCase.iv), hex(testCase.ct + testCase.tag), hex(testCase.aad)),
    ).toThrow(DecryptionFailedError);
  });
});

describe('AES-256-GCM call discipline', () => {
  const key = new Uint8Array(32).fill(7);
  const nonce = new Uint8Array(12).fill(9);
  const associatedData = Uint8Array.of(1, 2, 3);

  test('a 128- or 192-bit key is refused (noble would accept it and silently weaken the cipher)', () => {
    expect(() => aes256GcmEncrypt(new Uint8Array(16).fill(1), nonce, new Uint8Array(1), associatedData)).toThrow(
      RangeError,
    );
    expect(() => aes256GcmDecrypt(new Uint8Array(24).fill(1), nonce, new Uint8Array(16), associatedData)).toThrow(
      RangeError,
    );
  });

  test('only 96-bit nonces are accepted', () => {
    expect(() => aes256GcmEncrypt(key, new Uint8Array(8), new Uint8Array(1), associatedData)).toThrow(RangeError);
    expect(() => aes256GcmEncrypt(key, new Uint8Array(16), new Uint8Array(1), associatedData)).toThrow(RangeError);
  });

  test('input shorter than a tag fails as DecryptionFailedError, not a library exception', () => {
    for (let length = 0; length < 16; length++) {
      expect(() => aes256GcmDecrypt(key, nonce, new Uint8Array(length), associatedData)).toThrow(DecryptionFailedError);
    }
  });

  test('other associated data fails to decrypt, and the error carries no plaintext or key bytes', () => {
    const sealed = aes256GcmEncrypt(key, nonce, Buffer.from('provision-secret'), associatedData);
    let caught: unknown;
    try {
      aes256GcmDecrypt(key, nonce, sealed, Uint8Array.of(1, 2, 4));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DecryptionFailedError);
    expect((caught as Error).message).toBe('authentication tag does not match');
  });
});
