import { collectDefaultMetrics, type Registry } from 'prom-client';

const METRIC_PREFIX = 'provsec_';

/**
 * prom-client's gauges that end in `_total`: in Prometheus naming `_total` marks a counter, so
 * `promtool check metrics` rejects them. Each is the sum of a labelled gauge that stays
 * (`nodejs_active_handles` by type, and so on), so dropping them loses nothing.
 */
const MISNAMED_DEFAULT_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** Node and process metrics (CPU, memory, event loop, GC) under our prefix, minus the misnamed gauges. */
export function registerDefaultMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  // prom-client 15 can turn off whole collectors only, not single gauges; remove these after the fact.
  for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(METRIC_PREFIX + name);
}
