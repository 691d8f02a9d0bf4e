/**
 * The key status: which KEKs the source knows, which is current, and how many stored secrets each
 * wraps, including KEKs rows still need that the source no longer has. GET /v1/keys shows it and
 * the readiness checks read it. Ids and counts only: a KEK id is a fingerprint, never key material.
 */
import type { KeySource } from '../keys/key-source';
import type { KekUsageCounter } from '../rotation/kek-usage';

export interface KeyStatusEntry {
  kekId: string;
  /** The KEK's `kekVersion`; the response field keeps its published name. */
  versionLabel: number | null;
  current: boolean;
  /** false: rows under this KEK cannot be opened until the source has it again. */
  available: boolean;
  rows: number;
}

export async function keyStatus(
  keys: Pick<KeySource, 'currentKeyring' | 'status' | 'pendingKek'>,
  usage: KekUsageCounter,
) {
  const keyring = keys.currentKeyring();
  const counts = new Map((await usage.usage()).map((entry) => [entry.kekId, entry.rows]));
  const entries: KeyStatusEntry[] = (keyring?.entries() ?? []).map((entry) => ({
    kekId: entry.kekId,
    versionLabel: entry.kekVersion,
    current: entry.kekId === keyring?.current.kekId,
    available: !entry.retired,
    rows: counts.get(entry.kekId) ?? 0,
  }));
  for (const [kekId, rows] of counts) {
    if (!entries.some((entry) => entry.kekId === kekId))
      entries.push({ kekId, versionLabel: null, current: false, available: false, rows });
  }
  const status = keys.status();
  const currentKekId = keyring?.current.kekId ?? null;
  const pending = keys.pendingKek();
  return {
    source: {
      kind: status.kind,
      state: status.state,
      loadedAt: status.loadedAt?.toISOString() ?? null,
      lastError: status.lastError ?? null,
    },
    /** The KEK that seals now (the newest active version). */
    currentKekId,
    /** A newer version the source holds that does not seal yet, and when it will. */
    pendingKek: pending
      ? { kekId: pending.kekId, kekVersion: pending.kekVersion, activatesAt: pending.activatesAt.toISOString() }
      : null,
    keys: entries,
    rowsNotUnderCurrent: entries.filter((entry) => !entry.current).reduce((sum, entry) => sum + entry.rows, 0),
    rowsUnderUnavailableKeks: entries.filter((entry) => !entry.available).reduce((sum, entry) => sum + entry.rows, 0),
  };
}
