/**
 * Where the envelope gets its data keys and nonces.
 * Invariants: production code uses the operating system's CSPRNG (node:crypto randomBytes); a
 * different source is injected only by known-answer tests, to pin the exact envelope bytes; a
 * source that returns fewer or more bytes than asked for is refused, never padded or cut.
 */
import { randomBytes } from 'node:crypto';
import { needs } from './needs';

export interface RandomSource {
  /** Returns `length` fresh, unpredictable bytes the caller then owns (and may zero). */
  randomBytes(length: number): Uint8Array;
}

/** node:crypto's CSPRNG (OpenSSL's DRBG seeded by the kernel); throws rather than return weak bytes. */
export const systemRandom: RandomSource = Object.freeze({
  randomBytes: (length: number): Uint8Array => randomBytes(length),
});

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
