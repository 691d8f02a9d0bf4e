import { Router } from 'express';
import { HttpProblem, problemBody, PROBLEM_CONTENT_TYPE } from './problem';

export interface ReadinessResult {
  readonly ok: boolean;
  /** Why not ready, or a note worth showing while ready (e.g. a KEK missing for some rows). */
  readonly detail?: string;
}

export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<ReadinessResult>;
}

/** Readiness checks are bounded: a hung dependency must read as "not ready", not hang the probe. */
const CHECK_TIMEOUT_MS = 2000;

async function runCheck(check: ReadinessCheck): Promise<ReadinessResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ReadinessResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `${check.name} check timed out` }), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      // Started inside a promise so that a check that throws synchronously reads as "not ready" too.
      Promise.resolve()
        .then(() => check.check())
        .catch((error: unknown) => ({ ok: false, detail: (error as Error).message })),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(checks: readonly ReadinessCheck[], isDraining: () => boolean): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'alive' });
  });
  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all(checks.map(async (check) => [check.name, await runCheck(check)] as const));
    const report = Object.fromEntries(
      results.map(([name, result]) => [name, { ok: result.ok, ...(result.detail ? { detail: result.detail } : {}) }]),
    );
    const failing = results.filter(([, result]) => !result.ok);
    if (isDraining()) failing.push(['shutdown', { ok: false, detail: 'shutting down' }]);
    if (failing.length === 0) {
      res.setHeader('Cache-Control', 'no-store');
      res.json({ status: 'ready', checks: report });
      return;
    }
    const detail = failing.map(([name, result]) => `${name}: ${result.detail ?? 'not ready'}`).join('; ');
    const problem = new HttpProblem(503, 'not-ready', 'Not Ready', detail, {}, { checks: report });
    res
      .status(503)
      .type(PROBLEM_CONTENT_TYPE)
      .setHeader('Cache-Control', 'no-store')
      .send(JSON.stringify(problemBody(problem, res.locals.requestId as string)));
  });
  return router;
}
