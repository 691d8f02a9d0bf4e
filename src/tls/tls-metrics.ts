/**
 * Prometheus metrics of the serving certificate: when it lapses (so an alert fires while the agent
 * or cert-manager still has time to renew it), and how its reloads went. No label carries
 * certificate or key content; failure reasons come from a fixed set.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  CERTIFICATE_PAIR_FAILURE_REASONS,
  type CertificatePair,
  type CertificatePairFailureReason,
} from './certificate-pair';

export interface TlsMetrics {
  setServedCertificate(pair: CertificatePair): void;
  recordReload(): void;
  recordFailure(reason: CertificatePairFailureReason): void;
}

export function createTlsMetrics(registry: Registry): TlsMetrics {
  const registers = [registry];
  const notAfter = new Gauge({
    name: 'provsec_tls_certificate_not_after_seconds',
    help: "The served certificate's notAfter, in seconds since the Unix epoch",
    registers,
  });
  const reloads = new Counter({
    name: 'provsec_tls_certificate_reloads_total',
    help: 'Certificate pairs installed on the listener after start-up (new connections get them)',
    registers,
  });
  const failures = new Counter({
    name: 'provsec_tls_certificate_reload_failures_total',
    help: 'Refused certificate reloads by reason; the previous certificate kept serving',
    labelNames: ['reason'] as const,
    registers,
  });
  // Every series exists from the start, so an alert on increase() works before the first failure.
  for (const reason of CERTIFICATE_PAIR_FAILURE_REASONS) failures.inc({ reason }, 0);
  return {
    setServedCertificate: (pair) => notAfter.set(Math.floor(pair.notAfter.getTime() / 1000)),
    recordReload: () => reloads.inc(),
    recordFailure: (reason) => failures.inc({ reason }),
  };
}
