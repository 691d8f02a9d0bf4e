/** The README chart: well-formed SVG with the figures it claims to show, and no markup from data. */
import { niceAxis, renderChart } from '../../bench/chart';
import type { BenchResults, ScenarioSummary } from '../../bench/summary';

const scenario = (serviceRps: number, baselineRps: number): ScenarioSummary => ({
  service: { rounds: 3, requestsPerSecond: serviceRps, p50Ms: 12.5, p99Ms: 40, serverCpuMsPerRequest: 0.8 },
  baseline: { rounds: 3, requestsPerSecond: baselineRps, p50Ms: 8, p99Ms: 30, serverCpuMsPerRequest: 0.35 },
  throughputRatio: serviceRps / baselineRps,
  cpuPerRequestRatio: 0.8 / 0.35,
  targetRatio: 0.8,
  met: serviceRps / baselineRps >= 0.8,
});

const results = {
  name: 'latest',
  createdAt: '2026-11-23T17:00:00.000Z',
  machine: { logicalCpus: 2, cpuModel: 'AMD <EPYC> & co', memoryBytes: 1, kernel: '6', node: 'v20.20.2' },
  configuration: {
    connections: 16,
    rounds: 3,
    roundSeconds: 10,
    serviceLogLevel: 'info',
    tokenAlgorithm: 'ES256',
    nodeArgs: ['--max-semi-space-size=1'],
    secretReadRateLimitPerMinute: 1_000_000,
  },
  scenarios: { read: scenario(900, 1200), create: scenario(700, 1000) },
  memory: { servicePeakRssBytes: 150 * 1024 * 1024 },
} as unknown as BenchResults;

test('axes end on a round multiple of a round tick step, about five gridlines', () => {
  expect(niceAxis(2065)).toEqual({ axisMax: 2500, step: 500 });
  expect(niceAxis(55.8)).toEqual({ axisMax: 60, step: 20 });
  expect(niceAxis(1000)).toEqual({ axisMax: 1000, step: 200 });
  expect(niceAxis(0.9)).toEqual({ axisMax: 1, step: 0.2 });
  expect(niceAxis(0)).toEqual({ axisMax: 1, step: 0.2 });
});

test('the chart shows both targets per scenario with their figures and ratio', () => {
  const svg = renderChart(results);
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(svg.trim().endsWith('</svg>')).toBe(true);
  for (const figure of [
    '900',
    '1200',
    '700',
    '1000',
    '12.5',
    'throughput ratio 0.75',
    'throughput ratio 0.70',
    'CPU per request 2.3x',
  ])
    expect(svg).toContain(figure);
  expect((svg.match(/<rect /g) ?? []).length).toBe(1 + 2 * 2 + 2 * 4 + 2);
});

test('text from the machine description is escaped, never markup', () => {
  const svg = renderChart(results);
  expect(svg).toContain('AMD &lt;EPYC&gt; &amp; co');
  expect(svg).not.toContain('<EPYC>');
});
