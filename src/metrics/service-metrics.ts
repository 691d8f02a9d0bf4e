import { Counter, type Registry } from 'prom-client';

/** Business metrics. Labels are outcome and reason codes only: never ids, tokens or secrets. */
export function createServiceMetrics(registry: Registry) {
  return {
    secretReads: new Counter({
      name: 'provsec_secret_reads_total',
      help: 'Provision-secret reads by outcome (ok, denied, error)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'provsec_auth_failures_total',
      help: 'Refused requests by reason (token problems, missing permission, rate limit)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
  };
}

export type ServiceMetrics = ReturnType<typeof createServiceMetrics>;
