/**
 * Authentication and authorization for /v1. A missing or bad token is a 401 with a generic body
 * (the specific reason goes to the log, the metric and the audit log); a valid token without the
 * permission, or outside its groups, is a 403. Every refusal is audited (repeated ones counted
 * per window, see audit/denial-audit.ts).
 */
import type { Request, RequestHandler, Response } from 'express';
import {
  AuthenticationError,
  parseBearerHeader,
  type AccessPolicy,
  type Permission,
  type Principal,
  type TokenVerifier,
} from '../auth';
import type { AuditAction } from '../audit/audit-log';
import { deniedEvent, type DenialAudit } from '../audit/denial-audit';
import type { Logger } from '../log/logger';
import type { ServiceMetrics } from '../metrics/service-metrics';
import type { Actor } from '../service/device-group-service';
import { problems } from './problem';

export interface AuthDeps {
  readonly verifier: TokenVerifier;
  readonly policy: AccessPolicy;
  /** Denials are audited through the bounded recorder: a flood of them costs a bounded number of rows. */
  readonly denials: Pick<DenialAudit, 'record'>;
  readonly metrics: ServiceMetrics;
}

export function principalOf(res: Response): Principal {
  return res.locals.principal as Principal;
}

export function actorOf(req: Request, res: Response): Actor {
  const principal = res.locals.principal as Principal | undefined;
  return {
    requestId: res.locals.requestId as string,
    actorIssuer: principal?.issuer ?? null,
    actorSubject: principal?.subject ?? null,
    clientAddress: req.socket.remoteAddress ?? null,
  };
}

export function authenticate(deps: AuthDeps): RequestHandler {
  return async (req, res, next) => {
    try {
      const token = parseBearerHeader(req.header('authorization'));
      res.locals.principal = await deps.verifier.verify(token);
      next();
    } catch (error) {
      if (!(error instanceof AuthenticationError)) throw error;
      const log = res.locals.log as Logger;
      deps.metrics.authFailures.inc({ reason: error.reason });
      await deps.denials.record(
        deniedEvent(actorOf(req, res), { action: 'auth', groupId: null, reason: error.reason }),
      );
      if (error.reason === 'jwks_unavailable') {
        // Our fault, not the caller's: the issuer's key set could not be fetched.
        log.error({ tokenReason: error.reason }, 'token verification unavailable');
        throw problems.unavailable('Token verification is temporarily unavailable.');
      }
      log.warn({ tokenReason: error.reason, detail: error.message }, 'bearer token refused');
      throw problems.unauthorized();
    }
  };
}

/**
 * Requires `permission`; with `groupIdOf`, on that group. Denials are audited under `action`.
 */
export function authorize(
  deps: AuthDeps,
  permission: Permission,
  action: AuditAction,
  groupIdOf?: (req: Request) => string | undefined,
): RequestHandler {
  return async (req, res, next) => {
    const principal = principalOf(res);
    const groupId = groupIdOf?.(req);
    if (deps.policy.can(principal, permission, groupId)) {
      next();
      return;
    }
    deps.metrics.authFailures.inc({ reason: 'forbidden' });
    if (action === 'provision-secret.read') deps.metrics.secretReads.inc({ outcome: 'denied' });
    (res.locals.log as Logger).warn(
      { permission, groupId, subject: principal.subject, issuer: principal.issuer },
      'permission denied',
    );
    await deps.denials.record(
      deniedEvent(actorOf(req, res), { action, groupId: groupId ?? null, reason: `missing_permission:${permission}` }),
    );
    throw problems.forbidden();
  };
}
