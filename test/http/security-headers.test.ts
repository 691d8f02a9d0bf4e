import express, { Router } from 'express';
import helmet from 'helmet';
import { Registry } from 'prom-client';
import request from 'supertest';
import { createApp } from '../../src/http/app';
import { recordHelmetHeaders } from '../../src/http/security-headers';
import { capturedLogger } from '../support/log-capture';

/** The headers helmet() itself puts on a live response (lower-case names, as node reports them). */
async function liveHelmetHeaders(): Promise<Record<string, string>> {
  const reference = express();
  reference.set('etag', false); // as createApp; everything else on the response is helmet's
  reference.disable('x-powered-by');
  reference.use(helmet());
  reference.get('/', (_req, res) => {
    res.json({});
  });
  const response = await request(reference).get('/');
  const {
    date: _date,
    connection: _connection,
    'content-type': _type,
    'content-length': _length,
    ...rest
  } = response.headers as Record<string, string>;
  return rest;
}

describe('security headers', () => {
  const routes = Router();
  routes.get('/v1/thing', (_req, res) => {
    res.json({ ok: true });
  });
  routes.post('/v1/thing', (_req, res) => {
    res.status(201).json({ created: true });
  });
  routes.get('/v1/broken', () => {
    throw new Error('boom');
  });
  const app = createApp({
    logger: capturedLogger().logger,
    registry: new Registry(),
    readinessChecks: [],
    isDraining: () => false,
    // These tests are about other layers; authentication has tests of its own (app.test.ts).
    authenticateApi: (_req, _res, next) => next(),
    routers: [routes],
  });

  test('the recorded headers are the ones helmet() sets on a live response, the same names and values', async () => {
    const live = await liveHelmetHeaders();
    const recorded = Object.fromEntries(recordHelmetHeaders().set.map(([name, value]) => [name.toLowerCase(), value]));
    expect(recorded).toEqual(live);
    expect(Object.keys(recorded).length).toBeGreaterThanOrEqual(12);
  });

  test.each([
    ['a JSON read', () => request(app).get('/v1/thing'), 200],
    ['a creation', () => request(app).post('/v1/thing').set('Content-Type', 'application/json').send('{}'), 201],
    ['a 404 problem', () => request(app).get('/no/such/route'), 404],
    ['a 415 problem', () => request(app).post('/v1/thing').set('Content-Type', 'text/plain').send('x'), 415],
    ['a 500 problem', () => request(app).get('/v1/broken'), 500],
    ['the liveness probe', () => request(app).get('/healthz'), 200],
    ['a HEAD request', () => request(app).head('/v1/thing'), 200],
  ])('%s carries every helmet header with helmet’s value', async (_name, send, status) => {
    const live = await liveHelmetHeaders();
    const response = await send();
    expect(response.status).toBe(status);
    for (const [name, value] of Object.entries(live)) expect([name, response.headers[name]]).toEqual([name, value]);
    expect(response.headers['x-powered-by']).toBeUndefined();
  });
});
