/**
 * Rewrap: move every stored data key to the current KEK without decrypting any secret.
 * Invariants: a batch is claimed with FOR UPDATE SKIP LOCKED and written in the same transaction,
 * so it is all-or-nothing, two workers never rewrap one row, and an API rotation or deletion of a
 * claimed row waits for the commit instead of being clobbered (and a deleted row is never revived:
 * rewrap only UPDATEs). Each row is rewrapped under the binding context it was sealed for, so a
 * row whose envelope does not belong to it fails here exactly as it would on read.
 */
import type { Pool, PoolClient } from 'pg';
import { CryptoError, rewrapEnvelope, type Keyring } from '../crypto';
import type { KeySource } from '../keys/key-source';

export interface RewrapBatchResult {
  /** Rows moved to the current KEK. */
  readonly rewrapped: number;
  /** Rows claimed but left as they were, with the reason (KEK missing, envelope damaged). */
  readonly failed: ReadonlyArray<{ readonly groupId: string; readonly reason: string }>;
  /** The greatest id claimed, the cursor for the next batch. */
  readonly lastId: string | undefined;
}

export interface RewrapDeps {
  readonly pool: Pick<Pool, 'connect' | 'query'>;
  readonly keys: Pick<KeySource, 'currentKeyring' | 'keyringFor'>;
}

interface ClaimedRow {
  id: string;
  secret_version: number;
  kek_id: string;
  kek_version: number | null;
  provision_secret_envelope: Buffer;
}

export class NoKeyringError extends Error {
  override readonly name = 'NoKeyringError';
}

/** Rows still under a KEK other than the current one (what is left to do). */
export async function countRowsToRewrap(pool: Pick<Pool, 'query'>, currentKekId: string): Promise<number> {
  const result = await pool.query<{ n: string }>('SELECT count(*) AS n FROM ota_groups WHERE kek_id IS NOT NULL AND kek_id <> $1', [currentKekId]);
  return Number(result.rows[0]?.n ?? 0);
}

/**
 * Claims up to `batchSize` rows not under the current KEK with ids after `afterId`, rewraps them
 * and commits. Rows another worker holds are skipped, not waited for.
 */
export async function rewrapBatch(deps: RewrapDeps, options: { batchSize: number; afterId?: string }): Promise<RewrapBatchResult> {
  const keyring = deps.keys.currentKeyring();
  if (!keyring) throw new NoKeyringError('no keyring is loaded; nothing can be rewrapped');
  const currentKekId = keyring.current.kekId;
  const client = await deps.pool.connect();
  try {
    await client.query('BEGIN');
    const claimed = await client.query<ClaimedRow>(
      `SELECT id, secret_version, kek_id, kek_version, provision_secret_envelope
         FROM ota_groups
        WHERE kek_id IS NOT NULL AND kek_id <> $1 AND ($2::text IS NULL OR id > $2)
        ORDER BY id
        LIMIT $3
        FOR UPDATE SKIP LOCKED`,
      [currentKekId, options.afterId ?? null, options.batchSize],
    );
    const ids: string[] = [];
    const envelopes: Buffer[] = [];
    const failed: Array<{ groupId: string; reason: string }> = [];
    const keyringsByKek = new Map<string, Keyring>();
    for (const row of claimed.rows) {
      try {
        let rowKeyring = keyringsByKek.get(row.kek_id);
        if (!rowKeyring) {
          rowKeyring = await deps.keys.keyringFor(row.kek_id, row.kek_version);
          keyringsByKek.set(row.kek_id, rowKeyring);
        }
        // The keyring for an old KEK must still wrap under the same current KEK as the claim.
        if (rowKeyring.current.kekId !== currentKekId) throw new NoKeyringError('the current KEK changed during the batch');
        const sealed = rewrapEnvelope(row.provision_secret_envelope, { groupId: row.id, secretVersion: row.secret_version }, rowKeyring);
        ids.push(row.id);
        envelopes.push(Buffer.from(sealed.envelope.buffer, sealed.envelope.byteOffset, sealed.envelope.byteLength));
      } catch (error) {
        if (error instanceof NoKeyringError) throw error;
        failed.push({ groupId: row.id, reason: error instanceof CryptoError ? error.code : 'internal_error' });
        if (!(error instanceof CryptoError)) throw error;
      }
    }
    if (ids.length > 0) await writeRewrapped(client, ids, envelopes, currentKekId, keyring.current.versionLabel);
    await client.query('COMMIT');
    return { rewrapped: ids.length, failed, lastId: claimed.rows[claimed.rows.length - 1]?.id };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** One statement for the whole batch: the rows are locked by this transaction, so nothing races. */
async function writeRewrapped(client: PoolClient, ids: string[], envelopes: Buffer[], kekId: string, kekVersion: number | null): Promise<void> {
  await client.query(
    `UPDATE ota_groups AS g
        SET provision_secret_envelope = u.envelope, kek_id = $3, kek_version = $4
       FROM unnest($1::text[], $2::bytea[]) AS u(id, envelope)
      WHERE g.id = u.id`,
    [ids, envelopes, kekId, kekVersion],
  );
}

export interface RewrapProgress {
  readonly rewrapped: number;
  readonly failed: number;
  /** Rows under old KEKs when the run started (an estimate; API writes change it). */
  readonly total: number;
}

export interface RewrapRunResult extends RewrapProgress {
  /** Rows still under a non-current KEK after the run: 0 means the rotation is complete. */
  readonly remaining: number;
  readonly failures: ReadonlyArray<{ readonly groupId: string; readonly reason: string }>;
}

/**
 * Rewraps until a pass finds nothing left to claim. Sweeps in id order with a cursor; a second
 * sweep from the start picks up rows that were locked by someone else during the first.
 */
export async function rewrapAll(
  deps: RewrapDeps,
  options: { batchSize: number; onProgress?: (progress: RewrapProgress) => void; shouldStop?: () => boolean },
): Promise<RewrapRunResult> {
  const keyring = deps.keys.currentKeyring();
  if (!keyring) throw new NoKeyringError('no keyring is loaded; nothing can be rewrapped');
  const total = await countRowsToRewrap(deps.pool, keyring.current.kekId);
  let rewrapped = 0;
  const failures: Array<{ groupId: string; reason: string }> = [];
  const failedIds = new Set<string>();
  for (let sweep = 0; sweep < 3 && !options.shouldStop?.(); sweep++) {
    let afterId: string | undefined;
    let claimedThisSweep = 0;
    for (;;) {
      if (options.shouldStop?.()) break;
      const batch = await rewrapBatch(deps, { batchSize: options.batchSize, afterId });
      rewrapped += batch.rewrapped;
      for (const failure of batch.failed) {
        if (!failedIds.has(failure.groupId)) failures.push(failure);
        failedIds.add(failure.groupId);
      }
      claimedThisSweep += batch.rewrapped;
      options.onProgress?.({ rewrapped, failed: failedIds.size, total });
      if (batch.lastId === undefined) break;
      afterId = batch.lastId;
    }
    if (claimedThisSweep === 0) break;
  }
  const remaining = await countRowsToRewrap(deps.pool, deps.keys.currentKeyring()?.current.kekId ?? keyring.current.kekId);
  return { rewrapped, failed: failedIds.size, total, remaining, failures };
}
