/** Reads counters from the service's real /metrics endpoint (Prometheus text format). */
import request from 'supertest';
import type { TestService } from '../../support/test-service';

export async function scrapeMetrics(svc: TestService): Promise<string> {
  const res = await request(svc.url).get('/metrics');
  expect(res.status).toBe(200);
  return res.text;
}

/** The value of `name` with exactly these labels (0 when the series does not exist yet). */
export function sampleValue(metricsText: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels)
    .map(([label, value]) => `${label}="${value}"`)
    .sort()
    .join(',');
  for (const line of metricsText.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = (match[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? [];
    if ([...present].sort().join(',') === wanted) return Number(match[3]);
  }
  return 0;
}

export async function counterValue(svc: TestService, name: string, labels: Record<string, string>): Promise<number> {
  return sampleValue(await scrapeMetrics(svc), name, labels);
}
