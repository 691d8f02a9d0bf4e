/**
 * GET /openapi.json: the OpenAPI 3.1 description of every route, built from the same zod schemas
 * that validate requests (src/http/schemas.ts). Placeholder until the full document lands.
 */
import { Router } from 'express';

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'provsec', version: '0.1.0' },
  paths: {},
};

export function openApiRoutes(): Router {
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });
  return router;
}
