-- The device-group table. In production `ota_groups` already exists with columns of its own
-- (ADR-BE-0001: secrets live in the existing table), so this only creates it when absent and
-- otherwise adds what provsec needs. It never drops, renames or rewrites an existing column.
CREATE TABLE IF NOT EXISTS ota_groups (
  id text PRIMARY KEY
);

ALTER TABLE ota_groups ADD COLUMN IF NOT EXISTS name text;
ALTER TABLE ota_groups ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE ota_groups ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();

-- provsec looks groups up by id and inserts with ON CONFLICT (id); an existing table whose id is
-- not already unique gets a unique index (this fails loudly, changing nothing, if ids repeat).
CREATE UNIQUE INDEX IF NOT EXISTS ota_groups_id_key ON ota_groups (id);
