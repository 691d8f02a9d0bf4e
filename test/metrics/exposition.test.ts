/**
 * The service's real /metrics, after traffic that fills every labelled series, as Prometheus reads
 * it: `promtool check metrics` (Prometheus's own linter) finds nothing, and no gauge carries the
 * counter suffix `_total` (src/metrics/default-metrics.ts drops prom-client's three).
 */
import { spawnSync } from 'node:child_process';
import { apiFor, CERT_WORKER, groupPath } from '../api/support/api-client';
import { scrapeMetrics } from '../api/support/metrics';
import { toolAvailable } from '../support/external-tools';
import { startTestService, type TestService } from '../support/test-service';

let svc: TestService;
let exposition = '';

beforeAll(async () => {
  svc = await startTestService();
  const api = apiFor(svc);
  await api.post('/v1/device-groups', { id: 'metrics.1', provisionSecret: 'ps-metrics-1' });
  await api.get(groupPath('metrics.1', '/provision-secret'), { as: CERT_WORKER });
  await api.get(groupPath('metrics.1'), { as: null });
  exposition = await scrapeMetrics(svc);
});
afterAll(() => svc.stop());

/** name -> type, from the `# TYPE` lines. */
function metricTypes(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((match) => [match[1]!, match[2]!]));
}

test('the scrape holds our series and the default Node ones, after traffic', () => {
  const types = metricTypes(exposition);
  expect(types.get('provsec_secret_reads_total')).toBe('counter');
  expect(types.get('provsec_auth_failures_total')).toBe('counter');
  expect(types.get('provsec_http_request_duration_seconds')).toBe('histogram');
  expect(types.get('provsec_nodejs_active_handles')).toBe('gauge');
  expect(exposition).not.toContain('ps-metrics-1');
});

test('no gauge is named like a counter (_total)', () => {
  const misnamed = [...metricTypes(exposition)].filter(([name, type]) => type !== 'counter' && name.endsWith('_total'));
  expect(misnamed).toEqual([]);
});

(toolAvailable('promtool', "metrics exposition: promtool's check of /metrics") ? test : test.skip)(
  'promtool check metrics finds no problem',
  () => {
    const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
    expect({ status: result.status, output: result.stdout + result.stderr }).toEqual({ status: 0, output: '' });
  },
);
