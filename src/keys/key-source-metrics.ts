/**
 * Prometheus metrics of the key source. KEK ids are HMAC fingerprints (src/crypto/kek.ts), safe to
 * expose; no metric carries key bytes. Label values come from fixed sets, except kek_id, which has
 * one live series at a time.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { KeySourceFailureReason } from './errors';
import { KEY_SOURCE_STATES, type KeySourceKind, type KeySourceState } from './key-source';

export interface KeySourceMetrics {
  setState(state: KeySourceState): void;
  setCurrentKekId(kekId: string | undefined): void;
  recordReload(): void;
  recordFailure(reason: KeySourceFailureReason): void;
}

export function createKeySourceMetrics(registry: Registry, kind: KeySourceKind): KeySourceMetrics {
  const registers = [registry];
  const state = new Gauge({
    name: 'provsec_key_source_state',
    help: 'Key source state: 1 for the current state (loading, ready, degraded, failed), 0 for the others',
    labelNames: ['source', 'state'] as const,
    registers,
  });
  const currentKek = new Gauge({
    name: 'provsec_key_source_current_kek_info',
    help: 'The KEK id (a fingerprint, not the key) that encrypts new secrets; value is always 1',
    labelNames: ['source', 'kek_id'] as const,
    registers,
  });
  const reloads = new Counter({
    name: 'provsec_key_source_reloads_total',
    help: 'Keyrings installed by the key source (a load that changed the keys)',
    labelNames: ['source'] as const,
    registers,
  });
  const failures = new Counter({
    name: 'provsec_key_source_reload_failures_total',
    help: 'Failed key loads by reason; the last good keyring kept serving',
    labelNames: ['source', 'reason'] as const,
    registers,
  });
  const lastReload = new Gauge({
    name: 'provsec_key_source_last_reload_timestamp_seconds',
    help: 'Unix time of the last keyring installed by the key source',
    labelNames: ['source'] as const,
    registers,
  });
  // Zero series exist from the start, so a dashboard can alert on rate() before the first failure.
  reloads.inc({ source: kind }, 0);

  return {
    setState(next) {
      for (const candidate of KEY_SOURCE_STATES)
        state.set({ source: kind, state: candidate }, candidate === next ? 1 : 0);
    },
    setCurrentKekId(kekId) {
      currentKek.reset();
      if (kekId !== undefined) currentKek.set({ source: kind, kek_id: kekId }, 1);
    },
    recordReload() {
      reloads.inc({ source: kind });
      lastReload.set({ source: kind }, Date.now() / 1000);
    },
    recordFailure(reason) {
      failures.inc({ source: kind, reason });
    },
  };
}
