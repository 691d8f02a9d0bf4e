/** The latency figures the benchmark reports, from every response's own time. */
import { percentile, summarizeLatencies } from '../../bench/latency';

test('percentiles are nearest-rank: p50 of 1..100 is 50, p99 is 99', () => {
  const values = Float64Array.from({ length: 100 }, (_, index) => index + 1);
  expect(percentile(values, 0.5)).toBe(50);
  expect(percentile(values, 0.99)).toBe(99);
  expect(percentile(values, 1)).toBe(100);
});

test('the summary sorts numerically and keeps sub-millisecond values', () => {
  const summary = summarizeLatencies([10.5, 0.25, 2, 0.75]);
  expect(summary).toEqual({ mean: 13.5 / 4, p50: 0.75, p90: 10.5, p99: 10.5, max: 10.5 });
});

test('no responses give NaN figures, not zeros that would look like a fast server', () => {
  const summary = summarizeLatencies([]);
  expect(Number.isNaN(summary.p50)).toBe(true);
  expect(Number.isNaN(summary.mean)).toBe(true);
});
