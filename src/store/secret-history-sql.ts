/**
 * SQL of the rollback check (sql/006_provision_secret_history.sql, docs/envelope-format.md):
 * every creation and rotation appends the stored envelope's fingerprint to the provsec-owned,
 * append-only `provision_secret_history` in the same statement as the change; a deletion appends a
 * record without one; a read opens an envelope only if it matches its group's newest record.
 * Invariant: there is no path that changes a row's data layer without a record in the same
 * statement, so an envelope that does not match was put there by someone other than provsec.
 */

/** The audit reason and error code of an envelope that is not the one provsec last stored. */
export const STALE_ENVELOPE_REASON = 'stale_envelope';

/**
 * A data-modifying CTE named `history` that records the envelope of every row of CTE `source`
 * (which must expose secret_version and data_layer_sha256, see FINGERPRINT_COLUMN) under
 * `sealedForIdSql`: the group id the envelope was sealed for (its AAD), which is the id the
 * caller gave, even where the table's collation matched a row spelled otherwise.
 */
export function recordStoredEnvelopeCte(source: string, sealedForIdSql: string): string {
  return `history AS (
    INSERT INTO provision_secret_history (group_id, secret_version, data_layer_sha256)
    SELECT ${sealedForIdSql}, ${source}.secret_version, ${source}.data_layer_sha256 FROM ${source}
  )`;
}

/** A RETURNING column of an INSERT/UPDATE of ota_groups: the fingerprint recordStoredEnvelopeCte records. */
export const FINGERPRINT_COLUMN = 'provsec_envelope_data_layer_sha256(provision_secret_envelope) AS data_layer_sha256';

/** A data-modifying CTE named `history` recording the deletion of every row of CTE `source` (which exposes id). */
export function recordDeletionCte(source: string): string {
  return `history AS (
    INSERT INTO provision_secret_history (group_id, secret_version, data_layer_sha256)
    SELECT ${source}.id, NULL, NULL FROM ${source}
  )`;
}

/**
 * A boolean SQL expression: the envelope of ota_groups row `alias` is the one the newest history
 * record of group `requestedIdSql` names (the id the caller asked for, which the envelope is then
 * opened for). False when the newest record is a deletion, or when there is none.
 */
export function envelopeIsCurrentSql(alias: string, requestedIdSql: string): string {
  return `COALESCE(provsec_envelope_data_layer_sha256(${alias}.provision_secret_envelope) = (
      SELECT h.data_layer_sha256 FROM provision_secret_history AS h
       WHERE h.group_id = ${requestedIdSql} ORDER BY h.id DESC LIMIT 1
    ), false)`;
}
