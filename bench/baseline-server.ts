/**
 * The benchmark's baseline: bare express + pg doing exactly the database work of the two measured
 * endpoints and nothing else: no token check, policy, rate limit, crypto, validation, logging or
 * metrics. What the service costs beyond this is what its security and operability cost.
 *
 * The SQL is the service's own (createDeviceGroupStore), so it cannot drift:
 *   GET  .../provision-secret  the one statement that SELECTs the row and INSERTs its audit
 *                              record (store.findForSecretRead)
 *   POST /v1/device-groups     the one statement that INSERTs into ota_groups, with envelope
 *                              bytes of the real size, and its audit record (store.insert), as
 *                              the service does for a new id
 * The response bodies have the service's shape and size; the secret is a stand-in of the stored
 * secret's length, since the baseline cannot decrypt.
 *
 * Started by bench/service.ts as its own process; configuration by environment:
 *   DATABASE_URL, PORT, DATABASE_POOL_MAX (the service's), BASELINE_SECRET_LENGTH (characters),
 *   BASELINE_ENVELOPE_BYTES, BASELINE_KEK_ID, BASELINE_KEK_VERSION (as stored for a real group).
 */
import { randomUUID } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import pino from 'pino';
import { createPool } from '../src/db/pool';
import { createDeviceGroupStore } from '../src/store/device-group-store';
import { toMetadataJson } from '../src/http/device-group-routes';

/** The audit rows name an actor of the same size as a real one; there is no token to take it from. */
export const BASELINE_ACTOR = { actorIssuer: 'https://issuer.provsec.bench', actorSubject: 'bench-worker-1' } as const;

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`baseline: ${name} is required`);
  return value;
}

function main(): void {
  const poolMax = Number(requiredEnv('DATABASE_POOL_MAX'));
  const envelopeBytes = Number(requiredEnv('BASELINE_ENVELOPE_BYTES'));
  const kekId = requiredEnv('BASELINE_KEK_ID');
  const kekVersionText = process.env.BASELINE_KEK_VERSION ?? '';
  const kekVersion = kekVersionText === '' ? null : Number(kekVersionText);
  const secretStandIn = 's'.repeat(Number(requiredEnv('BASELINE_SECRET_LENGTH')));

  // The service's pool factory, so pool size, timeouts and application name match.
  const pool = createPool({ connectionString: requiredEnv('DATABASE_URL'), max: poolMax }, pino({ level: 'warn' }));
  const store = createDeviceGroupStore(pool);

  const app = express();
  // The service turns ETags off (no caching of secrets); computing one per response is not free.
  app.set('etag', false);
  app.disable('x-powered-by');
  app.use(express.json());

  const actorFor = (req: Request) => ({
    ...BASELINE_ACTOR,
    requestId: randomUUID(),
    clientAddress: req.socket.remoteAddress ?? null,
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'alive' });
  });

  app.get('/v1/device-groups/:id/provision-secret', async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const row = await store.findForSecretRead(id, actorFor(req), { kind: 'json' });
    if (!row) {
      res.status(404).json({ status: 404, title: 'Not Found' });
      return;
    }
    res.setHeader('Cache-Control', 'no-store');
    res.json({ id: row.id, provisionSecret: secretStandIn, secretVersion: row.secretVersion });
  });

  app.post('/v1/device-groups', async (req: Request, res: Response) => {
    const body = req.body as { id?: unknown; name?: unknown; provisionSecret?: unknown };
    if (typeof body.id !== 'string' || typeof body.provisionSecret !== 'string') {
      res.status(400).json({ status: 400, title: 'Bad Request' });
      return;
    }
    const group = await store.insert(
      {
        id: body.id,
        name: typeof body.name === 'string' ? body.name : null,
        sealed: { envelope: Buffer.alloc(envelopeBytes), kekId, kekVersion },
      },
      actorFor(req),
    );
    if (!group) {
      res.status(409).json({ status: 409, title: 'Conflict' });
      return;
    }
    res
      .status(201)
      .location(`/v1/device-groups/${encodeURIComponent(group.id)}`)
      .json(toMetadataJson(group));
  });

  const server = app.listen(Number(requiredEnv('PORT')), '127.0.0.1');
  server.keepAliveTimeout = 5_000;
  const stop = (): void => {
    server.close(() => void pool.end().then(() => process.exit(0)));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
