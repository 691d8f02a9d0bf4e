/** Latency figures from every response's own time (autocannon's histogram keeps whole milliseconds only). */

export interface LatencySummaryMs {
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sortedAscending: Float64Array, fraction: number): number {
  if (sortedAscending.length === 0) return Number.NaN;
  const rank = Math.min(sortedAscending.length - 1, Math.max(0, Math.ceil(fraction * sortedAscending.length) - 1));
  return sortedAscending[rank] as number;
}

export function summarizeLatencies(latenciesMs: readonly number[]): LatencySummaryMs {
  const sorted = Float64Array.from(latenciesMs).sort();
  const mean = sorted.length === 0 ? Number.NaN : sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  return {
    mean,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}
