/**
 * One rewrap batch, all or nothing: BEGIN, claim rows under one old KEK, rewrap their data keys,
 * write them back in one UPDATE, COMMIT. Any error before COMMIT rolls the whole batch back, so a
 * crash, a kill or a failed statement leaves every row exactly as it was (and still readable).
 * Invariants: only rows this transaction claimed are written; a row that cannot be rewrapped is
 * left untouched and reported; the KEK id written is the one every new envelope names.
 */
import type { PoolClient } from 'pg';
import type { Keyring } from '../crypto';
import { claimBatch, writeRewrapped, type ClaimedRow, type ClaimMode } from './rewrap-store';
import { inThreadRewrapCrypto, type RewrapCrypto } from './rewrap-rows';

/** A row left as it was, with the crypto error code that stopped it (never key or secret bytes). */
export interface RewrapFailure {
  readonly groupId: string;
  readonly reason: string;
}

/** What one batch did and where its time went (milliseconds of wall time in each phase). */
export interface RewrapBatchReport {
  readonly fromKekId: string;
  readonly claimed: number;
  readonly rewrapped: number;
  readonly failures: readonly RewrapFailure[];
  /** The greatest id claimed: the cursor for the next batch (undefined: nothing was claimed). */
  readonly lastId: string | undefined;
  readonly claimMs: number;
  readonly cryptoMs: number;
  readonly writeMs: number;
  readonly commitMs: number;
}

/** The write updated a different number of rows than it claimed: something broke the row locks. */
export class RewrapInvariantError extends Error {
  override readonly name = 'RewrapInvariantError';
}

/**
 * Where the lanes sweeping one old KEK stand: one claim at a time, each starting after the rows
 * the previous claim took, so lanes sharing a cursor never claim the same row twice.
 */
export class ClaimCursor {
  private afterId: string | undefined;
  private exhausted = false;
  private turn: Promise<void> = Promise.resolve();

  /** false once a claim came back empty (or a lane broke): the lanes stop claiming. */
  get open(): boolean {
    return !this.exhausted;
  }

  close(): void {
    this.exhausted = true;
  }

  /** Runs `claim` from the cursor while no other claim can start, then moves the cursor past what it took. */
  async claimNext<Row extends { readonly id: string }>(
    claim: (afterId: string | undefined) => Promise<Row[]>,
  ): Promise<Row[]> {
    const previous = this.turn;
    let release!: () => void;
    this.turn = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      const rows = await claim(this.afterId);
      const last = rows[rows.length - 1];
      if (last === undefined) this.exhausted = true;
      else this.afterId = last.id;
      return rows;
    } finally {
      release();
    }
  }
}

export interface BatchSpec {
  readonly fromKekId: string;
  /** Unwraps under fromKekId and wraps under its current KEK. */
  readonly keyring: Keyring;
  /** Where the claim starts; shared by every lane sweeping fromKekId. */
  readonly cursor: ClaimCursor;
  readonly batchSize: number;
  readonly mode: ClaimMode;
  readonly lockTimeoutMs: number;
  readonly crypto?: RewrapCrypto;
}

/** Runs one batch on `client` (the caller's connection; this opens and ends the transaction). */
export async function runRewrapBatch(client: Pick<PoolClient, 'query'>, spec: BatchSpec): Promise<RewrapBatchReport> {
  const crypto = spec.crypto ?? inThreadRewrapCrypto;
  let phaseStartedAt = performance.now();
  await client.query('BEGIN');
  try {
    const claimed = await spec.cursor.claimNext((afterId) => {
      phaseStartedAt = performance.now();
      return claimBatch(client, {
        kekId: spec.fromKekId,
        afterId,
        limit: spec.batchSize,
        mode: spec.mode,
        lockTimeoutMs: spec.lockTimeoutMs,
      });
    });
    const claimMs = performance.now() - phaseStartedAt;
    const lastId = claimed[claimed.length - 1]?.id;
    if (claimed.length === 0) {
      await client.query('COMMIT');
      return {
        fromKekId: spec.fromKekId,
        claimed: 0,
        rewrapped: 0,
        failures: [],
        lastId,
        claimMs,
        cryptoMs: 0,
        writeMs: 0,
        commitMs: 0,
      };
    }

    phaseStartedAt = performance.now();
    const outcomes = await crypto.rewrap(
      claimed.map((row) => ({
        groupId: row.id,
        secretVersion: row.secret_version,
        envelope: row.provision_secret_envelope,
      })),
      spec.keyring,
    );
    const ids: string[] = [];
    const secretVersions: number[] = [];
    const envelopes: Uint8Array[] = [];
    const failures: RewrapFailure[] = [];
    outcomes.forEach((outcome, index) => {
      const row = claimed[index] as ClaimedRow;
      if ('failure' in outcome) {
        failures.push({ groupId: row.id, reason: outcome.failure });
        return;
      }
      ids.push(row.id);
      secretVersions.push(row.secret_version);
      envelopes.push(outcome.envelope);
    });
    const cryptoMs = performance.now() - phaseStartedAt;

    phaseStartedAt = performance.now();
    if (ids.length > 0) {
      const current = spec.keyring.current;
      const updated = await writeRewrapped(client, {
        ids,
        secretVersions,
        envelopes,
        fromKekId: spec.fromKekId,
        kekId: current.kekId,
        kekVersion: current.kekVersion,
      });
      // Fewer rows than claimed means a claimed row changed under our lock: commit nothing.
      if (updated !== ids.length)
        throw new RewrapInvariantError(`the batch write updated ${updated} of ${ids.length} claimed rows; rolled back`);
    }
    const writeMs = performance.now() - phaseStartedAt;

    phaseStartedAt = performance.now();
    await client.query('COMMIT');
    const commitMs = performance.now() - phaseStartedAt;
    return {
      fromKekId: spec.fromKekId,
      claimed: claimed.length,
      rewrapped: ids.length,
      failures,
      lastId,
      claimMs,
      cryptoMs,
      writeMs,
      commitMs,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
