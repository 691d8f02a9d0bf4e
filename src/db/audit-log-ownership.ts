/**
 * Whether the service's own database role can undo the audit log's protection. The append-only
 * triggers on audit_events (and provision_secret_history) stop everyone, but their owner (or a
 * superuser) may drop them: running as that role, as the default MIGRATE_ON_START=true with one
 * role does, leaves the history editable by the service's own credentials.
 */
import type { Pool } from 'pg';

/** true when the connected role owns audit_events, is a member of its owner, or is a superuser. */
export async function runtimeRoleOwnsAuditLog(pool: Pick<Pool, 'query'>): Promise<boolean> {
  const result = await pool.query<{ owns: boolean }>(
    `SELECT r.rolsuper OR pg_has_role(current_user, c.relowner, 'USAGE') AS owns
       FROM pg_class AS c, pg_roles AS r
      WHERE c.oid = to_regclass('audit_events') AND r.rolname = current_user`,
  );
  return result.rows[0]?.owns ?? false;
}
