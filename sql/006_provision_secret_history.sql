-- Rollback detection (docs/envelope-format.md, "Rollback"). `ota_groups` is shared with other
-- writers, so whoever can write it could put back an older envelope of the same row, or a deleted
-- group's envelope under a re-created group, and both would open. This provsec-owned, append-only
-- table records, for every creation and rotation, a fingerprint of the envelope provsec stored, and
-- every deletion as a row without one. A read opens the envelope only when its fingerprint equals
-- the group's newest record; the check is part of the read's own statement.
CREATE TABLE IF NOT EXISTS provision_secret_history (
  id bigserial PRIMARY KEY,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  group_id text NOT NULL,
  -- The secret version stored, for the record (the envelope's AAD already binds it). NULL: deleted.
  secret_version integer CHECK (secret_version > 0),
  -- provsec_envelope_data_layer_sha256 of the stored envelope. NULL: the group was deleted.
  data_layer_sha256 bytea CHECK (length(data_layer_sha256) = 32),
  CONSTRAINT provision_secret_history_deletion_has_nothing CHECK ((secret_version IS NULL) = (data_layer_sha256 IS NULL))
);

-- The read takes the group's newest record: one backward probe of this index.
CREATE INDEX IF NOT EXISTS provision_secret_history_group_idx ON provision_secret_history (group_id, id);

-- The fingerprint of a v1 envelope: SHA-256 of its data layer, bytes 77.. (data nonce, length,
-- secret ciphertext and tag; docs/envelope-format.md). A rewrap copies exactly those bytes, so it
-- never needs a new record; any new seal (fresh data nonce and key) gives a new fingerprint.
CREATE OR REPLACE FUNCTION provsec_envelope_data_layer_sha256(envelope bytea) RETURNS bytea
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT sha256(substring(envelope FROM 78)) $$;

CREATE OR REPLACE FUNCTION provision_secret_history_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'provision_secret_history is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER IF EXISTS provision_secret_history_append_only ON provision_secret_history;
CREATE TRIGGER provision_secret_history_append_only BEFORE UPDATE OR DELETE ON provision_secret_history
  FOR EACH ROW EXECUTE FUNCTION provision_secret_history_reject_change();
DROP TRIGGER IF EXISTS provision_secret_history_no_truncate ON provision_secret_history;
CREATE TRIGGER provision_secret_history_no_truncate BEFORE TRUNCATE ON provision_secret_history
  FOR EACH STATEMENT EXECUTE FUNCTION provision_secret_history_reject_change();

-- Groups stored before this migration: their envelopes as they are now become the first record
-- (trust on first use: a rollback done before this migration cannot be detected after it).
-- Without a record, a read refuses the envelope as stale.
INSERT INTO provision_secret_history (group_id, secret_version, data_layer_sha256)
SELECT id, secret_version, provsec_envelope_data_layer_sha256(provision_secret_envelope)
  FROM ota_groups
 WHERE provision_secret_envelope IS NOT NULL
 ORDER BY id;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'provsec_app') THEN
    GRANT SELECT, INSERT ON provision_secret_history TO provsec_app;
    REVOKE UPDATE, DELETE, TRUNCATE ON provision_secret_history FROM provsec_app;
    GRANT USAGE ON SEQUENCE provision_secret_history_id_seq TO provsec_app;
  END IF;
END $$;
