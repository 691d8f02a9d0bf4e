import { Gauge, type Registry } from 'prom-client';
import type { KekUsageCounter } from '../rotation/kek-usage';

/** provsec_kek_rows{kek_id}: stored secrets per KEK, from the (cached) count at scrape time. */
export function registerKekRowsMetric(registry: Registry, usage: KekUsageCounter): void {
  new Gauge({
    name: 'provsec_kek_rows',
    help: 'Stored provision secrets per KEK id (fingerprint)',
    labelNames: ['kek_id'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      try {
        for (const entry of await usage.usage()) this.set({ kek_id: entry.kekId }, entry.rows);
      } catch {
        // The database is unreachable: scrape the other metrics; readiness reports the outage.
        this.reset();
      }
    },
  });
}
