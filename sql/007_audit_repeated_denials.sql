-- Repeated denials of one kind from one client address are recorded as one row per time window
-- carrying how many there were (src/audit/denial-audit.ts), so a flood of bad tokens cannot grow
-- the log without bound. Such a row has occurred_at = the first and last_occurred_at = the last of
-- the denials it stands for; every other row stands for one event (occurrences 1).
-- Adding columns with a constant default rewrites no row and fires no UPDATE trigger.
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS occurrences integer NOT NULL DEFAULT 1 CHECK (occurrences >= 1);
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS last_occurred_at timestamptz;
