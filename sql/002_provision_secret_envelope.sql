-- Where the envelope-encrypted provision secret lives (format: docs/envelope-format.md).
-- All columns are nullable: rows that existed before provsec have no secret until one is stored.
ALTER TABLE ota_groups ADD COLUMN IF NOT EXISTS provision_secret_envelope bytea;
-- The KEK that wraps this row's data key: a fingerprint (kek_<32 hex>), never key material.
-- Also inside the envelope; kept here so rotation can find rows by KEK with an index.
ALTER TABLE ota_groups ADD COLUMN IF NOT EXISTS kek_id text;
-- The key source's version number for that KEK (Vault KV v2 version), a label used to fetch it.
ALTER TABLE ota_groups ADD COLUMN IF NOT EXISTS kek_version integer;
-- Bumped by every rotation of the provision secret itself; bound into the envelope's AAD.
ALTER TABLE ota_groups ADD COLUMN IF NOT EXISTS secret_version integer;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'ota_groups_envelope_complete') THEN
    -- A stored secret always carries its KEK id and version: a half-written row cannot be opened.
    ALTER TABLE ota_groups ADD CONSTRAINT ota_groups_envelope_complete CHECK (
      (provision_secret_envelope IS NULL AND kek_id IS NULL AND secret_version IS NULL)
      OR (provision_secret_envelope IS NOT NULL AND kek_id IS NOT NULL AND secret_version IS NOT NULL AND secret_version > 0)
    );
  END IF;
END $$;

-- Rewrap claims rows "under KEK x, in id order": this index serves that and the per-KEK counts.
CREATE INDEX IF NOT EXISTS ota_groups_kek_id_idx ON ota_groups (kek_id, id) WHERE kek_id IS NOT NULL;
