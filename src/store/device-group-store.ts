/**
 * SQL access to the provsec columns of `ota_groups`. It knows SQL, not HTTP, and never sees a
 * plaintext secret: it stores and returns sealed envelopes with their KEK id and versions.
 * Rows without an envelope (groups that existed before provsec) are invisible to the API until a
 * secret is stored for them. Every change is written in one statement together with its audit
 * record (a data-modifying CTE): if the audit insert fails, the change does not happen. Creation,
 * rotation and deletion also append to provsec's own secret history in that statement
 * (secret-history-sql.ts), which is what lets a read tell a rolled-back envelope from the current one.
 */
import type { Pool } from 'pg';
import type { SecretDelivery } from '../audit/audit-log';
import { actorParameters, auditCte, type Actor } from '../audit/audit-sql';
import {
  envelopeIsCurrentSql,
  FINGERPRINT_COLUMN,
  recordDeletionCte,
  recordStoredEnvelopeCte,
  STALE_ENVELOPE_REASON,
} from './secret-history-sql';

export interface DeviceGroupMetadata {
  readonly id: string;
  readonly name: string | null;
  readonly secretVersion: number;
  readonly kekId: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What opening a stored secret needs: the envelope, its KEK and secret version, and the rollback check's verdict. */
export interface SealedSecretRow {
  readonly id: string;
  readonly secretVersion: number;
  readonly kekId: string;
  readonly envelope: Buffer;
  readonly kekVersion: number | null;
  /** false: the envelope is not the one provsec last stored for this group (rolled back or replaced). */
  readonly envelopeIsCurrent: boolean;
}

export interface StoredDeviceGroup extends DeviceGroupMetadata, SealedSecretRow {}

export interface SealedRow {
  readonly envelope: Uint8Array;
  readonly kekId: string;
  readonly kekVersion: number | null;
}

interface DeviceGroupRow {
  id: string;
  name: string | null;
  secret_version: number;
  kek_id: string;
  kek_version: number | null;
  provision_secret_envelope: Buffer;
  envelope_is_current: boolean;
  created_at: Date;
  updated_at: Date;
}

const METADATA_COLUMNS = 'id, name, secret_version, kek_id, created_at, updated_at';
/**
 * Every column a secret read needs, from ota_groups row `g` found by the requested id in parameter
 * $1, with the rollback check's verdict for that id.
 */
const SEALED_SECRET_COLUMNS = `g.id, g.secret_version, g.kek_id, g.kek_version, g.provision_secret_envelope,
  ${envelopeIsCurrentSql('g', '$1')} AS envelope_is_current`;
/** The sealed secret's columns and the group's metadata. */
const STORED_COLUMNS = `${SEALED_SECRET_COLUMNS}, g.name, g.created_at, g.updated_at`;

function toMetadata(
  row: Pick<DeviceGroupRow, 'id' | 'name' | 'secret_version' | 'kek_id' | 'created_at' | 'updated_at'>,
): DeviceGroupMetadata {
  return {
    id: row.id,
    name: row.name,
    secretVersion: row.secret_version,
    kekId: row.kek_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

type SealedSecretColumns = Pick<
  DeviceGroupRow,
  'id' | 'secret_version' | 'kek_id' | 'kek_version' | 'provision_secret_envelope' | 'envelope_is_current'
>;

function toSealedSecret(row: SealedSecretColumns): SealedSecretRow {
  return {
    id: row.id,
    secretVersion: row.secret_version,
    kekId: row.kek_id,
    envelope: row.provision_secret_envelope,
    kekVersion: row.kek_version,
    envelopeIsCurrent: row.envelope_is_current,
  };
}

function toStored(row: DeviceGroupRow): StoredDeviceGroup {
  return { ...toMetadata(row), ...toSealedSecret(row) };
}

export function createDeviceGroupStore(pool: Pool) {
  return {
    /**
     * Stores a new group with secret version 1. A pre-existing row without a secret (created
     * outside provsec) is adopted; a row that already has a secret is left untouched.
     * Returns the stored metadata, or undefined when the id already holds a secret.
     */
    async insert(
      group: { id: string; name: string | null; sealed: SealedRow },
      actor: Actor,
    ): Promise<DeviceGroupMetadata | undefined> {
      const result = await pool.query<DeviceGroupRow>(
        `WITH written AS (
           INSERT INTO ota_groups (id, name, provision_secret_envelope, kek_id, kek_version, secret_version)
           VALUES ($1, $2, $3, $4, $5, 1)
           ON CONFLICT (id) DO UPDATE
             SET name = COALESCE(EXCLUDED.name, ota_groups.name),
                 provision_secret_envelope = EXCLUDED.provision_secret_envelope,
                 kek_id = EXCLUDED.kek_id, kek_version = EXCLUDED.kek_version,
                 secret_version = 1, updated_at = now()
             WHERE ota_groups.provision_secret_envelope IS NULL
           RETURNING ${METADATA_COLUMNS}, ${FINGERPRINT_COLUMN}
         ), ${recordStoredEnvelopeCte('written', '$1')}, ${auditCte('written', 'device-group.create', 6)}
         SELECT * FROM written`,
        [
          group.id,
          group.name,
          group.sealed.envelope,
          group.sealed.kekId,
          group.sealed.kekVersion,
          ...actorParameters(actor),
        ],
      );
      const row = result.rows[0];
      return row ? toMetadata(row) : undefined;
    },

    async find(id: string): Promise<StoredDeviceGroup | undefined> {
      const result = await pool.query<DeviceGroupRow>(
        `SELECT ${STORED_COLUMNS} FROM ota_groups AS g WHERE g.id = $1 AND g.provision_secret_envelope IS NOT NULL`,
        [id],
      );
      const row = result.rows[0];
      return row ? toStored(row) : undefined;
    },

    /**
     * Fetches a group's stored envelope AND commits its `provision-secret.read` audit record in one
     * statement (one round trip): the record exists before any plaintext can. If opening the
     * envelope then fails, the caller appends an `error` record for the same request id.
     * The same statement checks the envelope against provsec's secret history: a stale one
     * (rolled back, or another incarnation's) is recorded as an `error` with reason
     * stale_envelope instead, and comes back with envelopeIsCurrent false, not to be opened.
     * Otherwise the record says how the secret will be delivered (JSON, or a JWE to which kid).
     * Returns undefined, with nothing recorded, when the group has no stored secret.
     */
    async findForSecretRead(id: string, actor: Actor, delivery: SecretDelivery): Promise<SealedSecretRow | undefined> {
      // Only the columns the read uses: the name and the two timestamps would be parsed (a Date
      // each) on every read for nothing.
      const result = await pool.query<SealedSecretColumns>(
        `WITH grp AS (
           SELECT ${SEALED_SECRET_COLUMNS} FROM ota_groups AS g WHERE g.id = $1 AND g.provision_secret_envelope IS NOT NULL
         ), ${auditCte('grp', 'provision-secret.read', 2, {
           outcome: `CASE WHEN grp.envelope_is_current THEN 'ok' ELSE 'error' END`,
           reason: `CASE WHEN grp.envelope_is_current THEN NULL ELSE '${STALE_ENVELOPE_REASON}' END`,
           delivery: {
             secretDelivery: 'CASE WHEN grp.envelope_is_current THEN $6::text END',
             recipientKid: 'CASE WHEN grp.envelope_is_current THEN $7::text END',
           },
         })}
         SELECT * FROM grp`,
        [id, ...actorParameters(actor), delivery.kind, delivery.kind === 'jwe' ? delivery.recipientKid : null],
      );
      const row = result.rows[0];
      return row ? toSealedSecret(row) : undefined;
    },

    /** A page in id order, after the cursor (exclusive). Metadata only. */
    async list(limit: number, afterId: string | undefined): Promise<DeviceGroupMetadata[]> {
      const result = await pool.query<DeviceGroupRow>(
        `SELECT ${METADATA_COLUMNS} FROM ota_groups
          WHERE provision_secret_envelope IS NOT NULL AND ($1::text IS NULL OR id > $1)
          ORDER BY id LIMIT $2`,
        [afterId ?? null, limit],
      );
      return result.rows.map(toMetadata);
    },

    /**
     * Replaces the secret if the row is still at `expectedSecretVersion` (optimistic: a concurrent
     * rotation or deletion wins, and this returns undefined instead of clobbering it).
     */
    async replaceSecret(
      id: string,
      expectedSecretVersion: number,
      sealed: SealedRow,
      actor: Actor,
    ): Promise<DeviceGroupMetadata | undefined> {
      const result = await pool.query<DeviceGroupRow>(
        `WITH written AS (
           UPDATE ota_groups
              SET provision_secret_envelope = $3, kek_id = $4, kek_version = $5,
                  secret_version = secret_version + 1, updated_at = now()
            WHERE id = $1 AND secret_version = $2 AND provision_secret_envelope IS NOT NULL
            RETURNING ${METADATA_COLUMNS}, ${FINGERPRINT_COLUMN}
         ), ${recordStoredEnvelopeCte('written', '$1')}, ${auditCte('written', 'provision-secret.rotate', 6)}
         SELECT * FROM written`,
        [id, expectedSecretVersion, sealed.envelope, sealed.kekId, sealed.kekVersion, ...actorParameters(actor)],
      );
      const row = result.rows[0];
      return row ? toMetadata(row) : undefined;
    },

    /**
     * Deletes the group's row, wrapped data key included. Returns the deleted metadata, or
     * undefined when there was no such group.
     */
    async delete(id: string, actor: Actor): Promise<DeviceGroupMetadata | undefined> {
      const result = await pool.query<DeviceGroupRow>(
        `WITH written AS (
           DELETE FROM ota_groups WHERE id = $1 AND provision_secret_envelope IS NOT NULL RETURNING ${METADATA_COLUMNS}
         ), ${recordDeletionCte('written')}, ${auditCte('written', 'device-group.delete', 2)}
         SELECT * FROM written`,
        [id, ...actorParameters(actor)],
      );
      const row = result.rows[0];
      return row ? toMetadata(row) : undefined;
    },
  };
}

export type DeviceGroupStore = ReturnType<typeof createDeviceGroupStore>;
