-- The service's own database role. Run migrations as the tables' owner and the service as a login
-- role that is a member of provsec_app (see README, "Database roles"): it can then store and read
-- device groups and append to the audit log, but never rewrite or delete audit history.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'provsec_app') THEN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolcreaterole OR rolsuper)) THEN
      CREATE ROLE provsec_app NOLOGIN;
    ELSE
      RAISE NOTICE 'role provsec_app is missing and % cannot create it: create it, then re-run grants', current_user;
    END IF;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'provsec_app') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON ota_groups TO provsec_app;
    GRANT SELECT ON provsec_migrations TO provsec_app;
    GRANT SELECT, INSERT ON audit_events TO provsec_app;
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM provsec_app;
    GRANT USAGE ON SEQUENCE audit_events_id_seq TO provsec_app;
  END IF;
END $$;
