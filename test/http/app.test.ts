// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import request from 'supertest';
import { Router } from 'express';
import { Registry } from 'prom-client';
import type { Pool } from 'pg';
import { SQL_DIR } from '../../src/app-root';
import { runMigrations } from '../../src/db/migrate';
import { createApp } from '../../src/http/app';
import type { ReadinessCheck } from '../../src/http/health-routes';
import { createTestDatabase, poolFor } from '../support/test-database';
import { capturedLogger } from '../support/log-capture';

describe('HTTP basics', () => {
  let pool: Pool;
  const log = capturedLogger();
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    pool = poolFor(await createTestDatabase('http'));
    await runMigrations(pool, SQL_DIR);
    const echo = Router();
    echo.post('/v1/echo', (req, res) => {
      res.status(201).json({ received: req.body as unknown });
    });
    const database: ReadinessCheck = {
      name: 'database',
      check: async () => (await pool.query('SELECT 1'), { ok: true }),
    };
    app = createApp({
      logger: log.logger,
      registry: new Registry(),
      readinessChecks: [database],
      isDraining: () => false,
      routers: [echo],
    });
  });
  afterAll(() => pool.end());

  function expectProblem(response: request.Response, status: number): void {
    expect(response.status).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = JSON.parse(response.text) as Record<string, unknown>;
    expect(body).toMatchObject({
      status,
      type: expect.stringMatching(/^https:\/\//),
      title: expect.any(String),
      detail: expect.any(String),
    });
    expect(response.text).not.toMatch(/at .*\.(ts|js):\d+/);
    expect(response.text).not.toMatch(/<html/i);
  }

  test('GET /healthz says the process is alive', async () => {
    const response = await request(app).get('/healthz');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'alive' });
  });

  test('GET /readyz is 200 with every check listed when the database answers', async () => {
    const response = await request(app).get('/readyz');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ready', checks: { database: { ok: true } } });
  });

  test('an unknown route is a 404 problem', async () => {
    expectProblem(await request(app).get('/no/such/route'), 404);
  });

  test('malformed JSON is a 400 problem', async () => {
    expectProblem(await request(app).post('/v1/echo').set('Content-Type', 'application/json').send('{"id": '), 400);
  });

  test('a body over 16 KiB is a 413 problem', async () => {
    const big = JSON.stringify({ filler: 'x'.repeat(17 * 1024) });
    expectProblem(await request(app).post('/v1/echo').set('Content-Type', 'application/json').send(big), 413);
  });

  test('a body just under 16 KiB is accepted', async () => {
    const fits = JSON.stringify({ filler: 'x'.repeat(16 * 1024 - 20) });
    expect((await request(app).post('/v1/echo').set('Content-Type', 'application/json').send(fits)).status).toBe(201);
  });

  test.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])(
    'content type %s on a JSON route is a 415 problem',
    async (type) => {
      expectProblem(await request(app).post('/v1/echo').set('Content-Type', type).send('id=1'), 415);
    },
  );

  test('a valid X-Request-Id is echoed and appears in the request log line', async () => {
    const response = await request(app).get('/no/such/route').set('X-Request-Id', 'trace-abc.123');
    expect(response.headers['x-request-id']).toBe('trace-abc.123');
    expect((JSON.parse(response.text) as { requestId?: unknown }).requestId).toBe('trace-abc.123');
    const line = log.lines
      .map((entry) => JSON.parse(entry) as Record<string, unknown>)
      .find((entry) => entry.requestId === 'trace-abc.123');
    expect(line).toBeDefined();
  });

  test.each([
    ['too long', 'x'.repeat(129)],
    ['not printable', 'abc def\tghi'],
    ['injection', 'a"b{c}'],
  ])('an invalid X-Request-Id (%s) is replaced by a generated one', async (_case, offered) => {
    const response = await request(app).get('/healthz').set('X-Request-Id', offered);
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('a request id is generated when none is sent', async () => {
    const response = await request(app).get('/healthz');
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('helmet security headers are set', async () => {
    const response = await request(app).get('/healthz');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['x-powered-by']).toBeUndefined();
  });

  test('/metrics answers in Prometheus text format with request counts by route', async () => {
    await request(app).get('/healthz');
    const response = await request(app).get('/metrics');
    expect(response.status).toBe(200);
    expect(response.text).toMatch(/provsec_http_requests_total\{method="GET",route="\/healthz",status="200"\}/);
  });
});
