/** How rounds become the reported figures: medians per target, ratios, targets. */
import type { LatencySummaryMs } from '../../bench/latency';
import { median, summarizeScenario, type RoundRecord, type Target } from '../../bench/summary';

function round(target: Target, requestsPerSecond: number, p99: number, serverCpuMsPerRequest: number): RoundRecord {
  const latencyMs: LatencySummaryMs = { mean: 1, p50: p99 / 4, p90: p99 / 2, p99, max: p99 * 2 };
  return {
    scenario: 'read',
    target,
    round: 1,
    durationSeconds: 10,
    successfulResponses: requestsPerSecond * 10,
    requestsPerSecond,
    latencyMs,
    non2xxResponses: 0,
    statusCounts: { 200: requestsPerSecond * 10 },
    errors: 0,
    timeouts: 0,
    serverCpuMsPerRequest,
    serverCpuCores: 0.5,
    driverCpuCores: 0.3,
    machineBusyFraction: 0.9,
  };
}

test('median of an odd count is the middle value, of an even count the mean of the two middle ones', () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
});

test('a scenario compares the medians of its rounds, so one disturbed round does not decide it', () => {
  const rounds = [
    round('service', 800, 20, 0.8),
    round('service', 300, 90, 0.9),
    round('service', 820, 21, 0.8),
    round('baseline', 1000, 10, 0.4),
    round('baseline', 1000, 11, 0.4),
    round('baseline', 990, 12, 0.4),
  ];
  const summary = summarizeScenario(rounds, 'read');
  expect(summary.service.requestsPerSecond).toBe(800);
  expect(summary.service.p99Ms).toBe(21);
  expect(summary.throughputRatio).toBeCloseTo(0.8);
  expect(summary.cpuPerRequestRatio).toBeCloseTo(2);
  expect(summary.met).toBe(true);
});

test('a ratio below 0.8 is reported as missed', () => {
  const summary = summarizeScenario([round('service', 700, 20, 1), round('baseline', 1000, 10, 0.4)], 'read');
  expect(summary.met).toBe(false);
});
