/**
 * Rewrap: move every stored data key to the current KEK without decrypting any secret.
 * Invariants: each batch is claimed FOR UPDATE SKIP LOCKED and written in the same transaction
 * (rewrap-batch.ts), so it is all-or-nothing, two workers never rewrap one row, an API rotation
 * or deletion of a claimed row waits for the commit instead of being clobbered, and a deleted row
 * is never revived (rewrap only UPDATEs). Each row is rewrapped under the binding context it was
 * sealed for, so a row whose envelope does not belong to it fails here exactly as it would on read.
 *
 * How a run ends: a first pass skips rows other workers hold (no double work); later passes wait
 * for those locks (bounded by lockTimeoutMs) and look again, so "nothing left" is a certainty
 * rather than "nothing I could see", and rows written under an old KEK by a replica that had not
 * yet loaded the new keyring are picked up too.
 */
import type { Pool } from 'pg';
import { KekUnavailableError, type Keyring } from '../crypto';
import type { KeySource } from '../keys/key-source';
import { ClaimCursor, runRewrapBatch, type RewrapBatchReport, type RewrapFailure } from './rewrap-batch';
import { inThreadRewrapCrypto, type RewrapCrypto } from './rewrap-rows';
import { countRowsToRewrap, pendingKeks, type ClaimMode, type PendingKek } from './rewrap-store';
import { createThreadedRewrapCrypto } from './rewrap-thread-pool';

export { countRowsToRewrap } from './rewrap-store';
export type { RewrapBatchReport, RewrapFailure } from './rewrap-batch';

export interface RewrapDeps {
  readonly pool: Pick<Pool, 'connect' | 'query'>;
  readonly keys: Pick<KeySource, 'currentKeyring' | 'keyringFor'>;
}

export class NoKeyringError extends Error {
  override readonly name = 'NoKeyringError';
}

/** Rows per KEK that could not even be claimed: the source does not hold that KEK. */
export interface UnavailableKek {
  readonly kekId: string;
  readonly rows: number;
  readonly reason: string;
}

export interface RewrapProgress {
  readonly rewrapped: number;
  /** Rows that could not be rewrapped: damaged envelopes, and rows under KEKs the source lacks. */
  readonly failed: number;
  /** Rows under old KEKs when the run started (an estimate; API writes change it). */
  readonly total: number;
}

export interface RewrapTimings {
  /** Wall time summed over batches; with several lanes the phases overlap. */
  readonly claimMs: number;
  readonly cryptoMs: number;
  readonly writeMs: number;
  readonly commitMs: number;
  readonly batches: number;
}

export interface RewrapRunResult extends RewrapProgress {
  /** Rows still under a non-current KEK after the run: 0 means the rotation is complete. */
  readonly remaining: number;
  /** Up to MAX_REPORTED_FAILURES rows that failed, with the reason. */
  readonly failures: readonly RewrapFailure[];
  readonly unavailableKeks: readonly UnavailableKek[];
  /** true when shouldStop ended the run early. */
  readonly stopped: boolean;
  readonly timings: RewrapTimings;
}

export interface RewrapOptions {
  /** Rows per batch (per transaction). */
  readonly batchSize: number;
  /** Batches in flight at once, each on its own connection: one is in Postgres while another is rewrapped. Default 1. */
  readonly concurrency?: number;
  /** Worker threads for the crypto; 0 (default) rewraps on the calling thread. Needs the compiled build. */
  readonly cryptoThreads?: number;
  /** Where the crypto runs, if not decided by cryptoThreads (the caller then closes it). */
  readonly crypto?: RewrapCrypto;
  /** How long a waiting pass waits for a row another worker holds. Default 5000. */
  readonly lockTimeoutMs?: number;
  readonly onProgress?: (progress: RewrapProgress) => void;
  readonly onBatch?: (report: RewrapBatchReport) => void;
  readonly shouldStop?: () => boolean;
}

const MAX_REPORTED_FAILURES = 100;
/** Distinct failed rows remembered (so a retried row is not counted twice); beyond it, counted only. */
const MAX_REMEMBERED_FAILED_ROWS = 100_000;
/** One skipping pass, then waiting passes until one rewraps nothing (bounded, for lagging writers). */
const MAX_PASSES = 6;
/** Under the pool's 10 s query timeout (src/db/pool.ts), so Postgres, not the client, ends a long wait. */
const DEFAULT_LOCK_TIMEOUT_MS = 5000;

function currentKeyringOf(keys: RewrapDeps['keys']): Keyring {
  const keyring = keys.currentKeyring();
  if (!keyring) throw new NoKeyringError('no keyring is loaded; nothing can be rewrapped');
  return keyring;
}

/** Rewraps until nothing is left that can be rewrapped (see the header for how a run ends). */
export async function rewrapAll(deps: RewrapDeps, options: RewrapOptions): Promise<RewrapRunResult> {
  const concurrency = options.concurrency ?? 1;
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const total = await countRowsToRewrap(deps.pool, currentKeyringOf(deps.keys).current.kekId);
  // Threads start only once there is something to rewrap (the worker's idle passes never need them).
  let crypto: RewrapCrypto | undefined;
  const cryptoForBatches = (): RewrapCrypto =>
    (crypto ??=
      options.crypto ??
      (options.cryptoThreads ? createThreadedRewrapCrypto({ threads: options.cryptoThreads }) : inThreadRewrapCrypto));
  const shouldStop = () => options.shouldStop?.() ?? false;

  let rewrapped = 0;
  let uncountedFailures = 0;
  const failedIds = new Set<string>();
  const failures: RewrapFailure[] = [];
  const unavailable = new Map<string, UnavailableKek>();
  const timings = { claimMs: 0, cryptoMs: 0, writeMs: 0, commitMs: 0, batches: 0 };
  const failedCount = () =>
    failedIds.size + uncountedFailures + [...unavailable.values()].reduce((sum, kek) => sum + kek.rows, 0);

  function recordBatch(report: RewrapBatchReport): void {
    rewrapped += report.rewrapped;
    timings.claimMs += report.claimMs;
    timings.cryptoMs += report.cryptoMs;
    timings.writeMs += report.writeMs;
    timings.commitMs += report.commitMs;
    timings.batches += 1;
    for (const failure of report.failures) {
      if (failedIds.has(failure.groupId)) continue;
      if (failedIds.size < MAX_REMEMBERED_FAILED_ROWS) failedIds.add(failure.groupId);
      else uncountedFailures += 1;
      if (failures.length < MAX_REPORTED_FAILURES) failures.push(failure);
    }
    options.onBatch?.(report);
    options.onProgress?.({ rewrapped, failed: failedCount(), total });
  }

  /** Every row under one old KEK, by `concurrency` lanes sharing one cursor. Returns rows rewrapped. */
  async function sweep(kek: PendingKek, keyring: Keyring, mode: ClaimMode): Promise<number> {
    const cursor = new ClaimCursor();
    let movedRows = 0;
    const batchCrypto = cryptoForBatches();
    // A newer current KEK ends the sweep early: the next pass rewraps to that one instead.
    const stillCurrent = () => deps.keys.currentKeyring()?.current.kekId === keyring.current.kekId;
    const lane = async (): Promise<void> => {
      const client = await deps.pool.connect();
      let broken: Error | undefined;
      try {
        while (cursor.open && !shouldStop() && stillCurrent()) {
          const report = await runRewrapBatch(client, {
            fromKekId: kek.kekId,
            keyring,
            cursor,
            batchSize: options.batchSize,
            mode,
            lockTimeoutMs,
            crypto: batchCrypto,
          });
          movedRows += report.rewrapped;
          if (report.claimed > 0) recordBatch(report);
        }
      } catch (error) {
        cursor.close(); // the other lanes finish their batch and stop
        broken = error instanceof Error ? error : new Error(String(error));
        throw error;
      } finally {
        client.release(broken);
      }
    };
    const outcomes = await Promise.allSettled(Array.from({ length: concurrency }, lane));
    const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    return movedRows;
  }

  /** One pass over every old KEK the rows still need. */
  async function pass(mode: ClaimMode): Promise<{ movedRows: number; pendingRows: number; currentChanged: boolean }> {
    const current = currentKeyringOf(deps.keys);
    const pending = await pendingKeks(deps.pool, current.current.kekId);
    let movedRows = 0;
    for (const kek of pending) {
      if (shouldStop()) break;
      let keyring: Keyring;
      try {
        keyring = await deps.keys.keyringFor(kek.kekId, kek.kekVersion);
      } catch (error) {
        // Fail closed: rows whose KEK the source lacks stay as they are (and stay unreadable).
        if (!(error instanceof KekUnavailableError)) throw error;
        unavailable.set(kek.kekId, { kekId: kek.kekId, rows: kek.rows, reason: error.message });
        continue;
      }
      unavailable.delete(kek.kekId);
      // The current KEK moved on since this pass began: the next pass sees the new one.
      if (keyring.current.kekId !== current.current.kekId || keyring.current.kekId === kek.kekId) continue;
      movedRows += await sweep(kek, keyring, mode);
    }
    const currentChanged = deps.keys.currentKeyring()?.current.kekId !== current.current.kekId;
    return { movedRows, pendingRows: pending.reduce((sum, kek) => sum + kek.rows, 0), currentChanged };
  }

  try {
    for (let passNumber = 0; passNumber < MAX_PASSES && !shouldStop(); passNumber++) {
      const { movedRows, pendingRows, currentChanged } = await pass(passNumber === 0 ? 'skip-locked' : 'wait');
      if (currentChanged) continue;
      if (pendingRows === 0 || (passNumber > 0 && movedRows === 0)) break;
    }
  } finally {
    if (crypto !== options.crypto) await crypto?.close();
  }
  const remaining = await countRowsToRewrap(deps.pool, currentKeyringOf(deps.keys).current.kekId);
  options.onProgress?.({ rewrapped, failed: failedCount(), total });
  return {
    rewrapped,
    failed: failedCount(),
    total,
    remaining,
    failures,
    unavailableKeks: [...unavailable.values()],
    stopped: shouldStop(),
    timings,
  };
}
