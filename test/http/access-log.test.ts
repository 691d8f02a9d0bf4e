import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { Router, type Response } from 'express';
import { Registry } from 'prom-client';
import { createApp } from '../../src/http/app';
import type { Logger } from '../../src/log/logger';
import { capturedLogger } from '../support/log-capture';

type LogLine = Record<string, unknown>;

describe('access log', () => {
  const log = capturedLogger();
  const routes = Router();
  let releaseSlow: (() => void) | undefined;
  routes.get('/v1/ok', (_req, res) => {
    res.json({ ok: true });
  });
  routes.get('/v1/warns', (_req, res: Response) => {
    (res.locals.log as Logger).warn({ reasonCode: 'example' }, 'handler warning');
    res.status(403).json({ denied: true });
  });
  routes.get('/v1/fails', () => {
    throw new Error('boom');
  });
  routes.get('/v1/slow', (_req, res) => {
    releaseSlow = () => res.json({ late: true });
  });
  const app = createApp({
    logger: log.logger,
    registry: new Registry(),
    readinessChecks: [],
    isDraining: () => false,
    // These tests are about other layers; authentication has tests of its own (app.test.ts).
    authenticateApi: (_req, _res, next) => next(),
    routers: [routes],
  });

  const linesFor = (requestId: string): LogLine[] =>
    log.lines.map((line) => JSON.parse(line) as LogLine).filter((line) => line.requestId === requestId);

  test('a request writes exactly one line with method, url, request id, status and response time', async () => {
    await request(app).get('/v1/ok?page=2').set('X-Request-Id', 'access-ok-1').expect(200);
    const lines = linesFor('access-ok-1');
    expect(lines).toHaveLength(1);
    const { time, responseTime, ...fields } = lines[0] ?? {};
    expect(typeof time).toBe('string');
    expect(typeof responseTime).toBe('number');
    expect(fields).toEqual({
      level: 'info',
      service: 'provsec',
      req: { method: 'GET', url: '/v1/ok?page=2', 'x-request-id': 'access-ok-1' },
      requestId: 'access-ok-1',
      res: { statusCode: 200 },
      msg: 'request completed',
    });
  });

  test('a generated request id is in the line, and no x-request-id field when the caller sent none', async () => {
    const response = await request(app).get('/v1/ok').expect(200);
    const requestId = response.headers['x-request-id'] as string;
    const [line] = linesFor(requestId);
    expect(line?.req).toEqual({ method: 'GET', url: '/v1/ok' });
  });

  test('what a handler logs through res.locals.log carries the request fields and id', async () => {
    await request(app).get('/v1/warns').set('X-Request-Id', 'access-warn-1').expect(403);
    const lines = linesFor('access-warn-1');
    expect(lines.map((line) => line.msg)).toEqual(['handler warning', 'request completed']);
    expect(lines[0]).toMatchObject({
      level: 'warn',
      reasonCode: 'example',
      req: { method: 'GET', url: '/v1/warns', 'x-request-id': 'access-warn-1' },
    });
  });

  test('a 5xx response is logged as request errored', async () => {
    await request(app).get('/v1/fails').set('X-Request-Id', 'access-fail-1').expect(500);
    const accessLine = linesFor('access-fail-1').find((line) => line.res !== undefined);
    expect(accessLine).toMatchObject({ res: { statusCode: 500 }, msg: 'request errored' });
  });

  test.each(['/healthz', '/metrics'])('%s (probes and scrapes) writes no line', async (path) => {
    await request(app).get(path).set('X-Request-Id', 'access-probe-1').expect(200);
    expect(linesFor('access-probe-1')).toHaveLength(0);
  });

  test('a client that disconnects before the response gets one request aborted line', async () => {
    const server: Server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const handled = new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (releaseSlow) {
            clearInterval(poll);
            resolve();
          }
        }, 5);
      });
      const client = httpRequest({ port, path: '/v1/slow', headers: { 'X-Request-Id': 'access-abort-1' } });
      client.on('error', () => undefined);
      client.end();
      await handled;
      client.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      releaseSlow?.();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const lines = linesFor('access-abort-1');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ msg: 'request aborted' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
