import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Equality of two secrets without a timing leak: both sides are hashed to a fixed length first,
 * so neither the position of the first difference nor a length difference shows in the timing.
 */
export function secretsEqual(left: Uint8Array, right: Uint8Array): boolean {
  const leftDigest = createHash('sha256').update(left).digest();
  const rightDigest = createHash('sha256').update(right).digest();
  return timingSafeEqual(leftDigest, rightDigest);
}
