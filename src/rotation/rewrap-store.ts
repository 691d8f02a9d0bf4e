/**
 * The SQL of rewrap: find what is left, claim a batch, write it back. It knows SQL, not crypto.
 * Invariants: a batch is claimed FOR UPDATE inside the caller's transaction and written only by
 * UPDATE of rows that transaction holds, so nothing can change a claimed row in between and a
 * deleted row is never written again; rows are claimed per KEK in id order (the kek_id index), so
 * every worker takes row locks in one global order and two workers cannot deadlock each other.
 */
import type { Pool, PoolClient } from 'pg';

export interface ClaimedRow {
  readonly id: string;
  readonly secret_version: number;
  readonly provision_secret_envelope: Buffer;
}

/** Rows under one KEK that is not the current one. */
export interface PendingKek {
  readonly kekId: string;
  /** The version label stored beside those rows (what a Vault source fetches the old KEK by). */
  readonly kekVersion: number | null;
  readonly rows: number;
}

/**
 * The KEKs other than the current one that rows still need, in kek_id order (the claim order).
 * The distinct KEK ids come from a skip scan of the kek_id index (one probe per KEK, however many
 * rows), and only the old KEKs' rows are counted: once a rotation is done this reads almost
 * nothing, which matters because every replica's worker asks on every interval.
 */
export async function pendingKeks(pool: Pick<Pool, 'query'>, currentKekId: string): Promise<PendingKek[]> {
  const result = await pool.query<{ kek_id: string; kek_version: number | null; rows: string }>(
    `WITH RECURSIVE keks(kek_id) AS (
       (SELECT kek_id FROM ota_groups WHERE kek_id IS NOT NULL ORDER BY kek_id LIMIT 1)
       UNION ALL
       SELECT (SELECT g.kek_id FROM ota_groups AS g WHERE g.kek_id > keks.kek_id ORDER BY g.kek_id LIMIT 1)
         FROM keks WHERE keks.kek_id IS NOT NULL
     )
     SELECT keks.kek_id,
            (SELECT g.kek_version FROM ota_groups AS g WHERE g.kek_id = keks.kek_id LIMIT 1) AS kek_version,
            (SELECT count(*) FROM ota_groups AS g WHERE g.kek_id = keks.kek_id) AS rows
       FROM keks
      WHERE keks.kek_id IS NOT NULL AND keks.kek_id <> $1
      ORDER BY keks.kek_id`,
    [currentKekId],
  );
  return result.rows.map((row) => ({ kekId: row.kek_id, kekVersion: row.kek_version, rows: Number(row.rows) }));
}

/** Rows still under a KEK other than `currentKekId` (what is left to do). */
export async function countRowsToRewrap(pool: Pick<Pool, 'query'>, currentKekId: string): Promise<number> {
  return (await pendingKeks(pool, currentKekId)).reduce((sum, kek) => sum + kek.rows, 0);
}

export type ClaimMode =
  /** Skip rows another transaction holds: the fast path, and what lets workers share the table. */
  | 'skip-locked'
  /** Wait (up to the lock timeout) for rows another transaction holds, then re-check them. */
  | 'wait';

/**
 * Locks up to `limit` rows under `kekId` with ids after `afterId`, in id order. Runs inside the
 * caller's open transaction. A row changed by a concurrent commit is re-checked by Postgres
 * against the newest version (rotated to another KEK: dropped; deleted: dropped), so what comes
 * back is always the row as it now is.
 */
export async function claimBatch(
  client: Pick<PoolClient, 'query'>,
  claim: { kekId: string; afterId: string | undefined; limit: number; mode: ClaimMode; lockTimeoutMs: number },
): Promise<ClaimedRow[]> {
  if (claim.mode === 'wait') {
    // SET LOCAL takes no bind parameters; the value is a validated integer, not caller text.
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(claim.lockTimeoutMs))}`);
  }
  const result = await client.query<ClaimedRow>(
    `SELECT id, secret_version, provision_secret_envelope
       FROM ota_groups
      WHERE kek_id = $1 AND ($2::text IS NULL OR id > $2)
      ORDER BY id
      LIMIT $3
      FOR UPDATE${claim.mode === 'skip-locked' ? ' SKIP LOCKED' : ''}`,
    [claim.kekId, claim.afterId ?? null, claim.limit],
  );
  return result.rows;
}

export interface RewrappedRows {
  readonly ids: readonly string[];
  /** Each row's secret version as claimed, in the order of `ids`. */
  readonly secretVersions: readonly number[];
  /** The new envelopes, in the order of `ids`. */
  readonly envelopes: readonly Uint8Array[];
  /** The KEK the rows were claimed under. */
  readonly fromKekId: string;
  /** The KEK that now wraps them. */
  readonly kekId: string;
  readonly kekVersion: number | null;
}

/**
 * Writes a claimed batch in one statement. The envelopes travel as one binary parameter with
 * offsets rather than a bytea[] literal: node-postgres sends a Buffer as raw bytes, where an array
 * would be hex-encoded by Node and hex-decoded by Postgres, row by row.
 * The rows are locked by the caller, so the KEK and secret-version guards never fail in practice;
 * they make the write a compare-and-swap as well, so even a row that somehow was not locked is
 * left alone rather than clobbered. Returns the rows updated (the caller checks the count).
 */
export async function writeRewrapped(client: Pick<PoolClient, 'query'>, rows: RewrappedRows): Promise<number> {
  let totalBytes = 0;
  for (const envelope of rows.envelopes) totalBytes += envelope.length;
  const packedEnvelopes = Buffer.allocUnsafe(totalBytes);
  const startsAt = new Array<number>(rows.envelopes.length);
  const lengths = new Array<number>(rows.envelopes.length);
  let offset = 0;
  rows.envelopes.forEach((envelope, index) => {
    packedEnvelopes.set(envelope, offset);
    startsAt[index] = offset + 1; // substring() counts from 1
    lengths[index] = envelope.length;
    offset += envelope.length;
  });
  const result = await client.query(
    `UPDATE ota_groups AS g
        SET provision_secret_envelope = substring($2::bytea FROM u.starts_at FOR u.length),
            kek_id = $3, kek_version = $4
       FROM unnest($1::text[], $5::int4[], $6::int4[], $7::int4[]) AS u(id, starts_at, length, secret_version)
      WHERE g.id = u.id AND g.kek_id = $8 AND g.secret_version = u.secret_version`,
    [rows.ids, packedEnvelopes, rows.kekId, rows.kekVersion, startsAt, lengths, rows.secretVersions, rows.fromKekId],
  );
  return result.rowCount ?? 0;
}
