import { drawRandomBytes, systemRandom } from '../../src/crypto/random';

describe('random source', () => {
  test('the system source returns the requested number of fresh bytes', () => {
    const draws = Array.from({ length: 100 }, () => Buffer.from(drawRandomBytes(systemRandom, 12)).toString('hex'));
    expect(new Set(draws).size).toBe(100);
    expect(drawRandomBytes(systemRandom, 32)).toHaveLength(32);
  });

  test('a short nonce or data key from a broken source would weaken GCM silently: wrong lengths are refused', () => {
    expect(() => drawRandomBytes({ randomBytes: (length) => new Uint8Array(length - 1) }, 12)).toThrow(RangeError);
    expect(() => drawRandomBytes({ randomBytes: (length) => new Uint8Array(length + 1) }, 12)).toThrow(RangeError);
    expect(() => drawRandomBytes({ randomBytes: () => [1, 2, 3] as unknown as Uint8Array }, 3)).toThrow(RangeError);
  });
});
