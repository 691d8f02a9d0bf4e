import type { RequestHandler } from 'express';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Requests by route template (never the raw path: ids would explode cardinality) and status. */
export function httpMetricsMiddleware(registry: Registry): RequestHandler {
  const requests = new Counter({
    name: 'provsec_http_requests_total',
    help: 'HTTP requests by method, route template and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'provsec_http_request_duration_seconds',
    help: 'HTTP request latency by method and route template',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // The series of each (method, route, status), bound once: inc/observe with a labels object would
  // sort and hash the labels on every request. As many entries as the metrics have series.
  const boundSeries = new Map<string, { readonly count: () => void; readonly observe: (seconds: number) => void }>();
  const seriesFor = (method: string, route: string, status: number) => {
    const key = `${method} ${status} ${route}`;
    let series = boundSeries.get(key);
    if (series === undefined) {
      const counter = requests.labels(method, route, String(status));
      const histogram = duration.labels(method, route);
      series = { count: () => counter.inc(), observe: (seconds) => histogram.observe(seconds) };
      boundSeries.set(key, series);
    }
    return series;
  };
  return (req, res, next) => {
    const startedAt = process.hrtime.bigint();
    res.on('finish', () => {
      const route = req.route ? `${req.baseUrl}${String((req.route as { path: string }).path)}` : 'unmatched';
      const series = seriesFor(req.method, route, res.statusCode);
      series.count();
      series.observe(Number(process.hrtime.bigint() - startedAt) / 1e9);
    });
    next();
  };
}
