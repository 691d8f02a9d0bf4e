-- The audit log: every create, secret read, rotation, deletion and denial. It never holds secret
-- or key material: KEK ids are fingerprints, actors are token claims.
CREATE TABLE IF NOT EXISTS audit_events (
  id bigserial PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  request_id text NOT NULL,
  actor_issuer text,
  actor_subject text,
  action text NOT NULL,
  group_id text,
  secret_version integer,
  kek_id text,
  outcome text NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
  reason text,
  client_address text
);

CREATE INDEX IF NOT EXISTS audit_events_group_idx ON audit_events (group_id, id);
CREATE INDEX IF NOT EXISTS audit_events_actor_idx ON audit_events (actor_subject, id);
CREATE INDEX IF NOT EXISTS audit_events_time_idx ON audit_events (occurred_at, id);

-- Append-only for everyone, the table owner included: history cannot be edited or erased
-- through SQL without first dropping this trigger (which itself needs ownership and shows in DDL logs).
CREATE OR REPLACE FUNCTION audit_events_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_reject_change();
DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_reject_change();
