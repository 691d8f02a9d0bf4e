/**
 * The express application: security headers, request ids, request logging, metrics, the JSON body
 * rules, authentication of every /v1 request, the routers runtime.ts hands in, and one error
 * handler. No I/O of its own.
 */
import express, { type RequestHandler, type Router } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '../log/logger';
import { accessLogMiddleware } from './access-log';
import { httpMetricsMiddleware } from '../metrics/http-metrics';
import {
  errorHandler,
  JSON_BODY_LIMIT_BYTES,
  notFoundHandler,
  requireJsonBody,
  type ErrorMapper,
} from './error-handler';
import { healthRoutes, type ReadinessCheck } from './health-routes';
import { requestIdMiddleware } from './request-id';
import { securityHeadersMiddleware } from './security-headers';

const UNLOGGED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export interface AppDependencies {
  logger: Logger;
  registry: Registry;
  readinessChecks: readonly ReadinessCheck[];
  isDraining: () => boolean;
  /**
   * Runs on every /v1 request before any router sees it (runtime.ts: the bearer-token check). It is
   * mounted here, once, rather than inside one of the routers, so that no /v1 route is protected
   * only because another router that authenticates happens to be mounted before it.
   */
  authenticateApi: RequestHandler;
  /** Routers mounted after the health routes, e.g. the /v1 API. */
  routers?: readonly Router[];
  /** Turn the service's own typed errors into problems (crypto, store, auth...). */
  errorMappers?: readonly ErrorMapper[];
}

export function createApp(deps: AppDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', false);
  app.use(securityHeadersMiddleware());
  app.use(requestIdMiddleware());
  app.use((_req, res, next) => {
    // While draining, finish this request but tell keep-alive clients to reconnect elsewhere.
    if (deps.isDraining()) res.setHeader('Connection', 'close');
    next();
  });
  // Probes and scrapes every few seconds would drown the log.
  app.use(accessLogMiddleware(deps.logger, { ignore: (path) => UNLOGGED_PATHS.has(path) }));
  app.use(httpMetricsMiddleware(deps.registry));
  app.use(healthRoutes(deps.readinessChecks, deps.isDraining));
  app.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });
  app.use(requireJsonBody());
  app.use(express.json({ limit: JSON_BODY_LIMIT_BYTES, strict: true, type: 'application/json' }));
  app.use('/v1', deps.authenticateApi);
  for (const router of deps.routers ?? []) app.use(router);
  app.use(notFoundHandler());
  app.use(errorHandler(deps.logger, deps.errorMappers));
  return app;
}
