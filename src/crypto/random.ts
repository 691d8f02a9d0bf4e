/**
 * Where the envelope gets its data keys and nonces.
 * Invariants: production code uses the operating system's CSPRNG (node:crypto randomBytes); a
 * different source is injected only by known-answer tests, to pin the exact envelope bytes; a
 * source that returns fewer or more bytes than asked for is refused, never padded or cut.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { needs } from './needs';

export interface RandomSource {
  /** Returns `length` fresh, unpredictable bytes the caller then owns (and may zero). */
  randomBytes(length: number): Uint8Array;
}

/** node:crypto's CSPRNG (OpenSSL's DRBG seeded by the kernel); throws rather than return weak bytes. */
export const systemRandom: RandomSource = Object.freeze({
  randomBytes: (length: number): Uint8Array => randomBytes(length),
});

/**
 * The same CSPRNG, filled `blockBytes` at a time, for callers that draw many short values in a row
 * (a rewrap draws one 12-byte nonce per row: a randomBytes() call each cost ~2.8 µs, 4 % of a row).
 * Each byte is handed out once, as a copy the caller owns; a block is zeroed as it is refilled.
 * For nonces: a data key should come from systemRandom, so no unused key bytes wait in a buffer.
 */
export function bufferedSystemRandom(blockBytes = 4096): RandomSource {
  needs(
    Number.isInteger(blockBytes) && blockBytes > 0,
    () => new RangeError('the block size must be a positive integer'),
  );
  const block = new Uint8Array(blockBytes);
  let used = blockBytes;
  return {
    randomBytes(length: number): Uint8Array {
      if (length > blockBytes) return randomBytes(length);
      if (used + length > blockBytes) {
        randomFillSync(block);
        used = 0;
      }
      const bytes = block.slice(used, used + length);
      block.fill(0, used, used + length);
      used += length;
      return bytes;
    },
  };
}

/** Draws exactly `length` bytes from `source`. */
export function drawRandomBytes(source: RandomSource, length: number): Uint8Array {
  const bytes = source.randomBytes(length);
  // A short nonce or data key from a broken source would weaken or break GCM without any error.
  needs(
    bytes instanceof Uint8Array && bytes.length === length,
    () => new RangeError(`the random source returned the wrong number of bytes (wanted ${length})`),
  );
  return bytes;
}
