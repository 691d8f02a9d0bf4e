import { retryAfterMs, retryDelayMs, RETRYABLE_STATUSES } from '../../src/client/retry';

test('only 429 and 503 are retryable', () => {
  expect([...RETRYABLE_STATUSES].sort()).toEqual([429, 503]);
});

test('Retry-After is read as seconds or as an HTTP date; anything else is ignored', () => {
  const now = Date.parse('2026-12-01T15:00:00Z');
  expect(retryAfterMs('3', now)).toBe(3000);
  expect(retryAfterMs('Tue, 01 Dec 2026 15:00:05 GMT', now)).toBe(5000);
  expect(retryAfterMs('Tue, 01 Dec 2026 14:00:00 GMT', now)).toBe(0);
  expect(retryAfterMs('soon', now)).toBeUndefined();
  expect(retryAfterMs(undefined, now)).toBeUndefined();
});

test('the delay is Retry-After (or a doubling backoff capped at 8 s) plus 0-50% jitter', () => {
  expect(retryDelayMs(2000, 0, () => 0)).toBe(2000);
  expect(retryDelayMs(2000, 0, () => 0.999)).toBe(2999);
  expect([0, 1, 2, 3, 4, 5, 6].map((attempt) => retryDelayMs(undefined, attempt, () => 0))).toEqual([
    500, 1000, 2000, 4000, 8000, 8000, 8000,
  ]);
});
