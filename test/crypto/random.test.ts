import { bufferedSystemRandom, drawRandomBytes, systemRandom } from '../../src/crypto/random';

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

  test('the buffered source hands out each byte once: draws across block refills are all distinct and of the asked length', () => {
    const random = bufferedSystemRandom(64);
    const draws = Array.from({ length: 200 }, () => Buffer.from(drawRandomBytes(random, 12)).toString('hex'));
    expect(new Set(draws).size).toBe(200);
    expect(drawRandomBytes(random, 100)).toHaveLength(100); // larger than a block: drawn directly
  });

  test('a buffered draw is a copy the caller owns: zeroing it does not change the next draw', () => {
    const random = bufferedSystemRandom(64);
    const first = drawRandomBytes(random, 12);
    first.fill(0);
    const second = drawRandomBytes(random, 12);
    expect(second.some((byte) => byte !== 0)).toBe(true);
  });
});
