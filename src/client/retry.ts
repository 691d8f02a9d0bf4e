/**
 * When to try again: 429 and 503 only, after the server's Retry-After (seconds or an HTTP date)
 * or an exponential backoff, plus up to 50% random jitter so a fleet of workers that was turned
 * away together does not come back together. Never past the caller's deadline.
 */

export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 503]);
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8_000;

/** Retry-After as milliseconds from `nowMs`, or undefined when absent or unreadable. */
export function retryAfterMs(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/** How long to wait before attempt `attempt + 1` (attempt counts from 0). `random` is in [0, 1). */
export function retryDelayMs(retryAfter: number | undefined, attempt: number, random: () => number): number {
  const base = retryAfter ?? Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt);
  return Math.round(base + base * 0.5 * random());
}
