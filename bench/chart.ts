/**
 * The README's benchmark chart, as plain SVG text (no browser, no chart library): grouped bars of
 * throughput on the left and of p50/p99 latency on the right, service against baseline.
 */
import type { Scenario } from './load-driver';
import { SCENARIO_TITLES, type BenchResults, type ScenarioSummary } from './summary';

const WIDTH = 960;
const HEIGHT = 470;
const COLORS = { service: '#2b6cb0', baseline: '#a0aec0', text: '#1a202c', muted: '#4a5568', grid: '#e2e8f0' } as const;

interface BarGroup {
  readonly label: string;
  /** Lines under the label. */
  readonly notes?: readonly string[];
  readonly service: number;
  readonly baseline: number;
}

interface Panel {
  readonly title: string;
  readonly unit: string;
  readonly x: number;
  readonly width: number;
  readonly groups: readonly BarGroup[];
  readonly format: (value: number) => string;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A round axis for values up to `value`: a tick step of 1, 2, 2.5 or 5 x 10^n giving about five
 * gridlines, and the first multiple of it at or above `value` as the axis end.
 */
export function niceAxis(value: number): { readonly axisMax: number; readonly step: number } {
  if (!(value > 0)) return { axisMax: 1, step: 0.2 };
  const rawStep = value / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rawStep));
  const step = ([1, 2, 2.5, 5, 10].find((multiple) => multiple * magnitude >= rawStep) ?? 10) * magnitude;
  return { axisMax: Math.ceil(value / step - 1e-9) * step, step };
}

function formatTick(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function renderPanel(panel: Panel): string {
  const top = 122;
  const bottom = HEIGHT - 92;
  const plotHeight = bottom - top;
  const { axisMax, step } = niceAxis(
    Math.max(...panel.groups.flatMap((group) => [group.service, group.baseline])) * 1.1,
  );
  const y = (value: number) => bottom - (value / axisMax) * plotHeight;
  const parts: string[] = [];
  parts.push(
    `<text x="${panel.x}" y="${top - 30}" font-size="15" font-weight="600" fill="${COLORS.text}">${escapeXml(panel.title)}</text>`,
  );
  const ticks = Math.round(axisMax / step);
  for (let tick = 0; tick <= ticks; tick++) {
    const value = step * tick;
    parts.push(
      `<line x1="${panel.x}" x2="${panel.x + panel.width}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}" stroke="${COLORS.grid}"/>`,
    );
    parts.push(
      `<text x="${panel.x - 6}" y="${(y(value) + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="${COLORS.muted}">${escapeXml(formatTick(value))}</text>`,
    );
  }
  parts.push(
    `<text x="${panel.x - 6}" y="${top - 10}" font-size="11" text-anchor="end" fill="${COLORS.muted}">${escapeXml(panel.unit)}</text>`,
  );
  const groupWidth = panel.width / panel.groups.length;
  const barWidth = Math.min(46, groupWidth * 0.32);
  panel.groups.forEach((group, index) => {
    const center = panel.x + groupWidth * (index + 0.5);
    for (const [offset, target] of [
      [-1, 'service'],
      [0, 'baseline'],
    ] as const) {
      const value = group[target];
      const left = center + offset * barWidth + (offset === 0 ? 2 : -2);
      parts.push(
        `<rect x="${left.toFixed(1)}" y="${y(value).toFixed(1)}" width="${barWidth.toFixed(1)}" height="${(bottom - y(value)).toFixed(1)}" fill="${COLORS[target]}"><title>${target}: ${escapeXml(panel.format(value))} ${escapeXml(panel.unit)}</title></rect>`,
      );
      parts.push(
        `<text x="${(left + barWidth / 2).toFixed(1)}" y="${(y(value) - 5).toFixed(1)}" font-size="11" text-anchor="middle" fill="${COLORS.text}">${escapeXml(panel.format(value))}</text>`,
      );
    }
    parts.push(
      `<text x="${center.toFixed(1)}" y="${bottom + 18}" font-size="12" text-anchor="middle" fill="${COLORS.text}">${escapeXml(group.label)}</text>`,
    );
    (group.notes ?? []).forEach((note, line) => {
      parts.push(
        `<text x="${center.toFixed(1)}" y="${bottom + 34 + 14 * line}" font-size="11" text-anchor="middle" fill="${COLORS.muted}">${escapeXml(note)}</text>`,
      );
    });
  });
  parts.push(
    `<line x1="${panel.x}" x2="${panel.x + panel.width}" y1="${bottom}" y2="${bottom}" stroke="${COLORS.muted}"/>`,
  );
  return parts.join('\n');
}

export function renderChart(results: BenchResults): string {
  const scenarios = Object.entries(results.scenarios) as Array<[Scenario, ScenarioSummary]>;
  const throughput: Panel = {
    title: 'Throughput (higher is better)',
    unit: 'req/s',
    x: 70,
    width: 370,
    format: (value) => value.toFixed(0),
    groups: scenarios.map(([scenario, summary]) => ({
      label: SCENARIO_TITLES[scenario],
      notes: [
        `throughput ratio ${summary.throughputRatio.toFixed(2)}`,
        `CPU per request ${summary.cpuPerRequestRatio.toFixed(1)}x`,
      ],
      service: summary.service.requestsPerSecond,
      baseline: summary.baseline.requestsPerSecond,
    })),
  };
  const latency: Panel = {
    title: 'Latency (lower is better)',
    unit: 'ms',
    x: 540,
    width: 390,
    format: (value) => (value >= 100 ? value.toFixed(0) : value.toFixed(1)),
    groups: scenarios.flatMap(([scenario, summary]) => [
      { label: `${scenario} p50`, service: summary.service.p50Ms, baseline: summary.baseline.p50Ms },
      { label: `${scenario} p99`, service: summary.service.p99Ms, baseline: summary.baseline.p99Ms },
    ]),
  };
  const { machine, configuration } = results;
  const subtitle =
    `${machine.logicalCpus} x ${machine.cpuModel}, Node ${machine.node}; ${configuration.connections} connections, ` +
    `median of ${configuration.rounds} x ${configuration.roundSeconds} s rounds; service LOG_LEVEL=${configuration.serviceLogLevel}, ${configuration.tokenAlgorithm} tokens; ` +
    `peak RSS ${(results.memory.servicePeakRssBytes / 1024 / 1024).toFixed(0)} MiB`;
  const conditions =
    `node ${configuration.nodeArgs.length > 0 ? configuration.nodeArgs.join(' ') : '(V8 defaults)'}; ` +
    `secret read rate limit raised to ${configuration.secretReadRateLimitPerMinute.toLocaleString('en-US')}/min for the run`;
  const legendY = HEIGHT - 22;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" role="img" aria-label="provsec benchmark: service against a bare express + pg baseline">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="20" y="28" font-size="17" font-weight="700" fill="${COLORS.text}">provsec against a bare express + pg baseline (same SQL, no auth, no crypto)</text>`,
    `<text x="20" y="46" font-size="11" fill="${COLORS.muted}">${escapeXml(subtitle)}</text>`,
    `<text x="20" y="60" font-size="11" fill="${COLORS.muted}">${escapeXml(conditions)}</text>`,
    renderPanel(throughput),
    renderPanel(latency),
    `<rect x="20" y="${legendY - 10}" width="12" height="12" fill="${COLORS.service}"/>`,
    `<text x="38" y="${legendY}" font-size="12" fill="${COLORS.text}">provsec (token check, policy, rate limit, envelope crypto, audit, logs, metrics)</text>`,
    `<rect x="560" y="${legendY - 10}" width="12" height="12" fill="${COLORS.baseline}"/>`,
    `<text x="578" y="${legendY}" font-size="12" fill="${COLORS.text}">baseline (express + pg, same statements)</text>`,
    `<text x="${WIDTH - 20}" y="28" font-size="11" text-anchor="end" fill="${COLORS.muted}">${escapeXml(results.name)} · ${escapeXml(results.createdAt.slice(0, 10))}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
