/**
 * GET /v1/keys (keys:admin): which KEKs the source knows, which is current, and how many stored
 * secrets each wraps, including KEKs rows still need that the source no longer has. Ids and
 * counts only: a KEK id is a fingerprint, never key material.
 */
import { Router, type Request, type Response } from 'express';
import type { KeySource } from '../keys/key-source';
import type { KekUsageCounter } from '../rotation/kek-usage';
import { keyStatus } from '../service/key-status';
import { authorize, type AuthDeps } from './auth-middleware';

export function keysRoutes(deps: {
  auth: AuthDeps;
  keys: Pick<KeySource, 'currentKeyring' | 'status' | 'pendingKek'>;
  usage: KekUsageCounter;
}): Router {
  const router = Router();
  router.get('/v1/keys', authorize(deps.auth, 'keys:admin', 'keys.read'), async (_req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json(await keyStatus(deps.keys, deps.usage));
  });
  return router;
}
