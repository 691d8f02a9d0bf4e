import { importKekFromHex } from '../../src/crypto/kek';
import { KeySourceLoadError } from '../../src/keys/errors';
import { formatSingleKeyFile, parseKeyFile } from '../../src/keys/key-file-format';
import { keySpellings, randomKeyHex } from './support/key-test-kit';
import { thrownBy } from '../support/thrown';

function loadError(text: string): KeySourceLoadError {
  const refused = thrownBy(KeySourceLoadError, () => parseKeyFile(text));
  expect(refused).toBeInstanceOf(KeySourceLoadError);
  return refused as KeySourceLoadError;
}

function expectMessageFreeOf(error: Error, keys: string[]): void {
  for (const key of keys) for (const spelling of keySpellings(key)) expect(error.message).not.toContain(spelling);
}

describe('key file format', () => {
  const keyA = randomKeyHex();
  const keyB = randomKeyHex();

  it('reads the ADR single-key form as a one-key keyring with no version label', () => {
    const keyring = parseKeyFile(JSON.stringify({ key: keyA }));
    expect(keyring.current.kekId).toBe(importKekFromHex(keyA).kekId);
    expect(keyring.current.kekVersion).toBeNull();
    expect(keyring.entries()).toHaveLength(1);
  });

  it.each([
    ['"keys": null', '{"current": 3, "keys": null}'],
    ['"keys": {}', '{"current": 3, "keys": {}}'],
  ])(
    'an empty keyring (%s) is refused with its likely cause: delete_version_after on the KV mount or the secret',
    (_name, text) => {
      const error = loadError(text);
      expect(error.reason).toBe('invalid_keyring');
      expect(error.message).toMatch(
        /^the key file holds no key \("keys": (null|\{\})\): Vault lists no live version of the KEK \(current 3\)\. The likely cause is delete_version_after on the KV mount or on the secret/,
      );
      expect(error.message).toContain('vault read <mount>/config');
    },
  );

  it('accepts upper- and lower-case hex as the same key (same KEK id)', () => {
    expect(parseKeyFile(JSON.stringify({ key: keyA.toUpperCase() })).current.kekId).toBe(
      parseKeyFile(JSON.stringify({ key: keyA })).current.kekId,
    );
  });

  it('accepts surrounding whitespace and a trailing newline', () => {
    expect(parseKeyFile(`\n  ${JSON.stringify({ key: keyA }, null, 2)}\n\n`).current.kekId).toBe(
      importKekFromHex(keyA).kekId,
    );
  });

  it('reads the keyring form: current encrypts, every listed version decrypts, labels are the versions', () => {
    const keyring = parseKeyFile(JSON.stringify({ current: 2, keys: { '1': keyA, '2': keyB } }));
    expect(keyring.current.kekId).toBe(importKekFromHex(keyB).kekId);
    expect(keyring.current.kekVersion).toBe(2);
    expect(keyring.has(importKekFromHex(keyA).kekId)).toBe(true);
    expect(keyring.decryptionKey(importKekFromHex(keyA).kekId).kekVersion).toBe(1);
  });

  it('gives one key the same KEK id in the single-key and keyring forms (rows written under either still open)', () => {
    const single = parseKeyFile(JSON.stringify({ key: keyA }));
    const ring = parseKeyFile(JSON.stringify({ current: 7, keys: { '7': keyA } }));
    expect(ring.current.kekId).toBe(single.current.kekId);
  });

  it('collapses one key listed under two versions into one entry labelled with the current version', () => {
    const keyring = parseKeyFile(JSON.stringify({ current: 3, keys: { '2': keyA, '3': keyA, '1': keyB } }));
    expect(keyring.entries()).toHaveLength(2);
    expect(keyring.current.kekVersion).toBe(3);
  });

  it('round-trips the single-key form the dev source writes', () => {
    expect(parseKeyFile(formatSingleKeyFile(keyA)).current.kekId).toBe(importKekFromHex(keyA).kekId);
  });

  describe('rejects, with a reason and without quoting the file', () => {
    const cases: Array<[string, string, KeySourceLoadError['reason']]> = [
      ['an empty file', '', 'invalid_json'],
      ['whitespace only', ' \n', 'invalid_json'],
      ['garbage', 'not json at all', 'invalid_json'],
      ['a partial write', `{"key": "${keyA.slice(0, 20)}`, 'invalid_json'],
      ['a bare hex string (JSON string, not an object)', JSON.stringify(keyA), 'invalid_format'],
      ['a key that is not a string', JSON.stringify({ key: 12 }), 'invalid_format'],
      [
        'an unknown field beside key (unknown fields are rejected)',
        JSON.stringify({ key: keyA, comment: 'x' }),
        'invalid_format',
      ],
      ['a misspelt field', JSON.stringify({ Key: keyA }), 'invalid_format'],
      ['the key pasted as a field NAME', JSON.stringify({ [keyA]: 'key' }), 'invalid_format'],
      [
        'a key pasted as a version NAME in the keyring form',
        JSON.stringify({ current: 1, keys: { [keyB]: keyA } }),
        'invalid_format',
      ],
      ['a 31-byte key (62 hex digits)', JSON.stringify({ key: keyA.slice(0, 62) }), 'invalid_key'],
      ['a 33-byte key', JSON.stringify({ key: `${keyA}ab` }), 'invalid_key'],
      ['an all-zero key', JSON.stringify({ key: '0'.repeat(64) }), 'invalid_key'],
      ['non-hex digits', JSON.stringify({ key: `${keyA.slice(0, 63)}g` }), 'invalid_key'],
      ['a key with inner whitespace', JSON.stringify({ key: ` ${keyA.slice(1)}` }), 'invalid_key'],
      ['current not among the keys', JSON.stringify({ current: 3, keys: { '1': keyA, '2': keyB } }), 'invalid_keyring'],
      ['an empty keys object', JSON.stringify({ current: 1, keys: {} }), 'invalid_keyring'],
      ['version 0', JSON.stringify({ current: 0, keys: { '0': keyA } }), 'invalid_format'],
      ['a version with a leading zero', JSON.stringify({ current: 1, keys: { '01': keyA } }), 'invalid_format'],
      ['a fractional current', JSON.stringify({ current: 1.5, keys: { '1': keyA } }), 'invalid_format'],
      ['current as a string', JSON.stringify({ current: '1', keys: { '1': keyA } }), 'invalid_format'],
      ['keys without current', JSON.stringify({ keys: { '1': keyA } }), 'invalid_format'],
      ['both forms at once', JSON.stringify({ key: keyA, current: 1, keys: { '1': keyA } }), 'invalid_format'],
      [
        'a bad key among good ones',
        JSON.stringify({ current: 2, keys: { '1': keyA.slice(2), '2': keyB } }),
        'invalid_key',
      ],
      [
        'an all-zero key under an older version',
        JSON.stringify({ current: 2, keys: { '1': '0'.repeat(64), '2': keyB } }),
        'invalid_key',
      ],
    ];
    it.each(cases)('%s', (_name, text, reason) => {
      const error = loadError(text);
      expect(error.reason).toBe(reason);
      expectMessageFreeOf(error, [keyA, keyB]);
    });
  });

  it('names the failing entry by version so an operator can find it', () => {
    expect(loadError(JSON.stringify({ current: 2, keys: { '1': keyA.slice(2), '2': keyB } })).message).toMatch(
      /keys\.1: a KEK must be 64 hex digits, got 62/,
    );
  });
});

describe('the keyring form with createdAt (delayed activation)', () => {
  const hex1 = 'a'.repeat(64);
  const hex2 = 'b'.repeat(64);

  test('a version with createdAt carries it; a version without has none', () => {
    const keyring = parseKeyFile(
      JSON.stringify({ current: 2, keys: { '1': hex1, '2': hex2 }, createdAt: { '2': '2026-12-01T12:00:00Z' } }),
    );
    const byVersion = new Map(keyring.entries().map((entry) => [entry.kekVersion, entry.createdAt?.toISOString()]));
    expect(Object.fromEntries(byVersion)).toEqual({ 1: undefined, 2: '2026-12-01T12:00:00.000Z' });
  });

  test('a createdAt that is not an RFC 3339 time, or names a version without a key, is refused', () => {
    expect(() =>
      parseKeyFile(JSON.stringify({ current: 1, keys: { '1': hex1 }, createdAt: { '1': 'yesterday' } })),
    ).toThrow(/createdAt/);
    expect(() =>
      parseKeyFile(JSON.stringify({ current: 1, keys: { '1': hex1 }, createdAt: { '3': '2026-12-01T12:00:00Z' } })),
    ).toThrow(/createdAt names version 3/);
  });
});
