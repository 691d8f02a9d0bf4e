// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import request from 'supertest';
import { Router, type RequestHandler } from 'express';
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
      // These tests are about other layers; where authentication is mounted is tested below.
      authenticateApi: (_req, _res, next) => next(),
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

describe('authentication of the /v1 API', () => {
  // A stand-in check: the real one (auth-middleware.ts) is tested in test/api; what is tested here
  // is where createApp mounts it, whatever the order and contents of the routers.
  const refuseWithoutToken: RequestHandler = (req, res, next) => {
    if (req.header('authorization') === 'Bearer good') {
      next();
      return;
    }
    res.status(401).json({ refused: req.originalUrl });
  };
  const routed = (path: string) => {
    const router = Router();
    router.get(path, (_req, res) => {
      res.json({ served: path });
    });
    return router;
  };
  const app = createApp({
    logger: capturedLogger().logger,
    registry: new Registry(),
    readinessChecks: [],
    isDraining: () => false,
    authenticateApi: refuseWithoutToken,
    routers: [routed('/v1/first'), routed('/v1/second'), routed('/open')],
  });

  test.each(['/v1/first', '/v1/second', '/v1/no-such-route'])(
    '%s: refused without a token, whichever router serves it',
    async (path) => {
      const response = await request(app).get(path);
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ refused: path });
    },
  );

  test('with a token, each router serves its own route', async () => {
    for (const path of ['/v1/first', '/v1/second']) {
      const response = await request(app).get(path).set('Authorization', 'Bearer good');
      expect(response.body).toEqual({ served: path });
    }
  });

  test.each([
    ['/open', 200],
    ['/healthz', 200],
    ['/metrics', 200],
    ['/v1x', 404],
  ])('%s is not under /v1 and is answered without a token (%d)', async (path, status) => {
    expect((await request(app).get(path)).status).toBe(status);
  });
});
