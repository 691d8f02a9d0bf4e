import { Router, type Request, type Response } from 'express';
import type { AuditEvent, AuditLog } from '../audit/audit-log';
import { authorize, principalOf, type AuthDeps } from './auth-middleware';
import { auditEventsQuery, groupIdSchema } from './schemas';
import { parseOr400 } from './validation';

const DEFAULT_PAGE_SIZE = 100;

function toAuditEventJson(event: AuditEvent) {
  return {
    ...event,
    occurredAt: event.occurredAt.toISOString(),
    lastOccurredAt: event.lastOccurredAt?.toISOString() ?? null,
  };
}

/**
 * GET /v1/audit-events: oldest first, paged by event id (createApp authenticates every /v1 request first).
 * `audit:read` is group-scoped like every permission: a `groupId` outside the caller's groups is a
 * 403, and without one the caller sees only its groups' events.
 */
export function auditRoutes(deps: { auth: AuthDeps; audit: Pick<AuditLog, 'query'> }): Router {
  const router = Router();
  const queriedGroup = (req: Request) => groupIdSchema.safeParse((req.query as { groupId?: unknown }).groupId).data;
  router.get(
    '/v1/audit-events',
    authorize(deps.auth, 'audit:read', 'audit.read', queriedGroup),
    async (req: Request, res: Response) => {
      const query = parseOr400(auditEventsQuery, req.query, 'query');
      const limit = query.limit ?? DEFAULT_PAGE_SIZE;
      const events = await deps.audit.query({
        scope: deps.auth.policy.groupScope(principalOf(res), 'audit:read'),
        groupId: query.groupId,
        actor: query.actor,
        since: query.since === undefined ? undefined : new Date(query.since),
        afterId: query.after,
        limit: limit + 1,
      });
      const page = events.slice(0, limit);
      res.json({
        items: page.map(toAuditEventJson),
        nextCursor: events.length > limit ? (page[page.length - 1]?.id ?? null) : null,
      });
    },
  );
  return router;
}
