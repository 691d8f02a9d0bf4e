/**
 * Per-identity rate limit on secret reads (express-rate-limit, in memory per replica). A worker
 * stuck in a loop, or a stolen token, cannot drain every secret at line rate.
 */
import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import { deniedEvent, type DenialAudit } from '../audit/denial-audit';
import type { Principal } from '../auth';
import type { ServiceMetrics } from '../metrics/service-metrics';
import { actorOf } from './auth-middleware';
import { problems, sendProblem } from './problem';
import { GROUP_ID_PATTERN } from '../auth/group-glob';

export interface SecretReadRateLimiter {
  readonly middleware: RequestHandler;
}

const WINDOW_MS = 60_000;

export function createSecretReadRateLimiter(
  options: { perMinute: number },
  deps: { denials: Pick<DenialAudit, 'record'>; metrics: ServiceMetrics },
): SecretReadRateLimiter {
  const middleware = rateLimit({
    windowMs: WINDOW_MS,
    limit: options.perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    // Runs after authentication: the key is the verified identity, never a client-chosen value.
    keyGenerator: (_req, res) => {
      const principal = res.locals.principal as Principal;
      return `${principal.issuer}\u0000${principal.subject}`;
    },
    handler: (req, res, next, optionsUsed) => {
      const resetTime = (req as unknown as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const retryAfterSeconds = Math.max(
        1,
        Math.ceil(((resetTime?.getTime() ?? Date.now() + optionsUsed.windowMs) - Date.now()) / 1000),
      );
      deps.metrics.authFailures.inc({ reason: 'rate_limited' });
      deps.metrics.secretReads.inc({ outcome: 'denied' });
      // The raw path id is not validated yet (that happens in the handler): audit only a well-formed one.
      const groupId = typeof req.params.id === 'string' && GROUP_ID_PATTERN.test(req.params.id) ? req.params.id : null;
      // The handler's type returns void: the audit write's failure goes to the error handler ourselves
      // (fail closed, a 500) rather than relying on the library to await what we return.
      deps.denials
        .record(deniedEvent(actorOf(req, res), { action: 'provision-secret.read', groupId, reason: 'rate_limited' }))
        .then(() => sendProblem(res, problems.tooManyRequests(retryAfterSeconds)), next);
    },
    validate: { trustProxy: false, xForwardedForHeader: false, ip: false },
  });
  return { middleware };
}
