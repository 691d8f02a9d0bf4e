import express from 'express';
import { Registry } from 'prom-client';
import request from 'supertest';
import { httpMetricsMiddleware } from '../../src/metrics/http-metrics';

describe('HTTP metrics', () => {
  test('each request counts once in its (method, route template, status) series and once in the latency histogram', async () => {
    const registry = new Registry();
    const app = express();
    app.use(httpMetricsMiddleware(registry));
    app.get('/v1/things/:id', (req, res) => {
      res.status(req.params.id === 'missing' ? 404 : 200).end();
    });
    for (const id of ['a', 'b', 'c', 'missing']) await request(app).get(`/v1/things/${id}`);
    await request(app).post('/nowhere');

    const text = await registry.metrics();
    expect(text).toContain('provsec_http_requests_total{method="GET",route="/v1/things/:id",status="200"} 3');
    expect(text).toContain('provsec_http_requests_total{method="GET",route="/v1/things/:id",status="404"} 1');
    expect(text).toContain('provsec_http_requests_total{method="POST",route="unmatched",status="404"} 1');
    expect(text).toContain('provsec_http_request_duration_seconds_count{method="GET",route="/v1/things/:id"} 4');
    expect(text).toContain('provsec_http_request_duration_seconds_count{method="POST",route="unmatched"} 1');
  });
});
