/**
 * /v1/device-groups: the management API creates, rotates and deletes; certificate workers read
 * provision secrets. Only GET .../provision-secret ever carries a secret in a response.
 */
import { Router, type Request, type Response } from 'express';
import { deniedEvent } from '../audit/denial-audit';
import type { DeviceGroupMetadata } from '../store/device-group-store';
import type { DeviceGroupService } from '../service/device-group-service';
import type { ServiceMetrics } from '../metrics/service-metrics';
import type { RecipientKey } from '../auth';
import { JWE_MEDIA_TYPE, RECIPIENT_THUMBPRINT_HEADER, THUMBPRINT_PATTERN } from '../protocol/secret-answer';
import { actorOf, authorize, principalOf, type AuthDeps } from './auth-middleware';
import { problems } from './problem';
import type { SecretReadRateLimiter } from './rate-limit';
import { createDeviceGroupBody, groupIdSchema, listDeviceGroupsQuery, rotateSecretBody } from './schemas';
import { parseOr400 } from './validation';

const DEFAULT_PAGE_SIZE = 100;
/** Rows per query once a group-restricted caller's page needs more than the first batch. */
const LIST_SCAN_BATCH = 1000;

export function toMetadataJson(group: DeviceGroupMetadata) {
  return {
    id: group.id,
    name: group.name,
    secretVersion: group.secretVersion,
    kekId: group.kekId,
    createdAt: group.createdAt.toISOString(),
    updatedAt: group.updatedAt.toISOString(),
  };
}

/** The path's group id, validated (an invalid id is a 400, not a 404). */
function groupIdParam(req: Request): string {
  return parseOr400(groupIdSchema, req.params.id, 'path');
}

export interface DeviceGroupRouteDeps {
  readonly auth: AuthDeps;
  readonly service: DeviceGroupService;
  readonly metrics: ServiceMetrics;
  readonly secretReadLimiter: SecretReadRateLimiter;
}

export function deviceGroupRoutes(deps: DeviceGroupRouteDeps): Router {
  const { auth, service } = deps;
  const router = Router();
  // Group-scoped permissions are checked against the validated path id.
  const pathGroup = (req: Request) => groupIdSchema.safeParse(req.params.id).data;
  const bodyGroup = (req: Request) => groupIdSchema.safeParse((req.body as { id?: unknown } | undefined)?.id).data;

  /**
   * The registered key to encrypt this read to, or undefined for plaintext JSON (no granting rule
   * has a key). The worker may name one of its keys by thumbprint (needed while two are registered);
   * naming a key that is not registered for it is refused, never answered with another key or in JSON.
   */
  async function chooseRecipient(req: Request, res: Response, groupId: string): Promise<RecipientKey | undefined> {
    const keys = auth.policy.recipientKeysFor(principalOf(res), groupId);
    const named = req.header(RECIPIENT_THUMBPRINT_HEADER);
    if (keys.length === 0) return undefined;
    if (named === undefined) return keys[0];
    if (!THUMBPRINT_PATTERN.test(named))
      throw problems.badRequest(
        `${RECIPIENT_THUMBPRINT_HEADER} must be a base64url SHA-256 JWK thumbprint (43 characters)`,
      );
    for (const key of keys) if ((await key.thumbprint()) === named) return key;
    deps.metrics.secretReads.inc({ outcome: 'denied' });
    await auth.denials.record(
      deniedEvent(actorOf(req, res), {
        action: 'provision-secret.read',
        groupId,
        reason: 'recipient_key_not_registered',
      }),
    );
    throw problems.recipientKeyNotRegistered();
  }

  router.post(
    '/v1/device-groups',
    authorize(auth, 'device-groups:write', 'device-group.create', bodyGroup),
    async (req: Request, res: Response) => {
      const body = parseOr400(createDeviceGroupBody, req.body, 'body');
      const result = await service.create(
        { id: body.id, name: body.name ?? null, provisionSecret: body.provisionSecret },
        actorOf(req, res),
      );
      res.status(result.created ? 201 : 200);
      if (result.created) res.location(`/v1/device-groups/${encodeURIComponent(result.group.id)}`);
      res.json(toMetadataJson(result.group));
    },
  );

  router.get(
    '/v1/device-groups',
    authorize(auth, 'device-groups:read', 'device-group.list'),
    async (req: Request, res: Response) => {
      const query = parseOr400(listDeviceGroupsQuery, req.query, 'query');
      const limit = query.limit ?? DEFAULT_PAGE_SIZE;
      const visible = auth.policy.groupFilter(principalOf(res), 'device-groups:read');
      // Collect one visible group more than the page (so we know another page follows), scanning past
      // groups the caller may not read: the cursor is then always a group it can see, never the id of
      // one outside its groups.
      const visibleGroups: DeviceGroupMetadata[] = [];
      let after = query.after;
      for (let batchSize = limit + 1; ; batchSize = Math.max(limit + 1, LIST_SCAN_BATCH)) {
        const rows = await service.list(batchSize, after);
        visibleGroups.push(...rows.filter((group) => visible(group.id)));
        if (visibleGroups.length > limit || rows.length < batchSize) break;
        after = rows[rows.length - 1]?.id;
      }
      const page = visibleGroups.slice(0, limit);
      const nextCursor = visibleGroups.length > limit ? (page[page.length - 1]?.id ?? null) : null;
      res.json({ items: page.map(toMetadataJson), nextCursor });
    },
  );

  router.get(
    '/v1/device-groups/:id',
    authorize(auth, 'device-groups:read', 'device-group.read', pathGroup),
    async (req: Request, res: Response) => {
      res.json(toMetadataJson(await service.get(groupIdParam(req))));
    },
  );

  router.get(
    '/v1/device-groups/:id/provision-secret',
    authorize(auth, 'provision-secret:read', 'provision-secret.read', pathGroup),
    deps.secretReadLimiter.middleware,
    async (req: Request, res: Response) => {
      const id = groupIdParam(req);
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('Pragma', 'no-cache');
      const recipient = await chooseRecipient(req, res, id);
      try {
        const answer = await service.readSecret(id, actorOf(req, res), recipient);
        deps.metrics.secretReads.inc({ outcome: 'ok' });
        if (answer.kind === 'jwe') {
          res.type(JWE_MEDIA_TYPE).send(answer.jwe);
          return;
        }
        const { secret } = answer;
        res.json({ id: secret.id, provisionSecret: secret.provisionSecret, secretVersion: secret.secretVersion });
      } catch (error) {
        deps.metrics.secretReads.inc({ outcome: 'error' });
        throw error;
      }
    },
  );

  router.put(
    '/v1/device-groups/:id/provision-secret',
    authorize(auth, 'device-groups:write', 'provision-secret.rotate', pathGroup),
    async (req: Request, res: Response) => {
      const id = groupIdParam(req);
      const body = parseOr400(rotateSecretBody, req.body, 'body');
      res.json(toMetadataJson(await service.rotateSecret(id, body.provisionSecret, actorOf(req, res))));
    },
  );

  router.delete(
    '/v1/device-groups/:id',
    authorize(auth, 'device-groups:write', 'device-group.delete', pathGroup),
    async (req: Request, res: Response) => {
      await service.delete(groupIdParam(req), actorOf(req, res));
      res.status(204).end();
    },
  );

  for (const path of ['/v1/device-groups', '/v1/device-groups/:id', '/v1/device-groups/:id/provision-secret']) {
    router.all(path, () => {
      throw problems.methodNotAllowed(
        path.endsWith('provision-secret') ? ['GET', 'PUT'] : path.endsWith(':id') ? ['GET', 'DELETE'] : ['GET', 'POST'],
      );
    });
  }
  return router;
}
