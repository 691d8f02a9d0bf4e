-- How a provision secret read was delivered: as plaintext JSON, or as a JWE encrypted to a worker's
-- registered key (recipient_kid names which). Set on provision-secret.read records, NULL elsewhere.
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS secret_delivery text
  CHECK (secret_delivery IN ('json', 'jwe'));
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS recipient_kid text;
-- A kid exactly when the answer was a JWE: an audit reader never has to guess which key could open it.
ALTER TABLE audit_events ADD CONSTRAINT audit_events_recipient_kid_iff_jwe
  CHECK (CASE secret_delivery WHEN 'jwe' THEN recipient_kid IS NOT NULL ELSE recipient_kid IS NULL END);
