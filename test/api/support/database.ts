/** Direct looks at the service's test database: what is stored, what was audited, everything as text. */
import type { Pool } from 'pg';

export interface AuditRow {
  id: string;
  request_id: string;
  actor_issuer: string | null;
  actor_subject: string | null;
  action: string;
  group_id: string | null;
  secret_version: number | null;
  kek_id: string | null;
  outcome: string;
  reason: string | null;
  client_address: string | null;
  secret_delivery: 'json' | 'jwe' | null;
  recipient_kid: string | null;
}

/** Every row of ota_groups, envelope bytes included (hex), in id order: compare before/after to prove nothing changed. */
export async function snapshotGroups(pool: Pool): Promise<unknown[]> {
  const result = await pool.query<Record<string, unknown>>(
    `SELECT id, name, secret_version, kek_id, kek_version, encode(provision_secret_envelope, 'hex') AS envelope_hex, created_at::text, updated_at::text
       FROM ota_groups ORDER BY id`,
  );
  return result.rows;
}

export async function auditRowsFor(
  pool: Pool,
  where: Partial<Pick<AuditRow, 'request_id' | 'group_id' | 'actor_subject' | 'action'>>,
): Promise<AuditRow[]> {
  const entries = Object.entries(where);
  const result = await pool.query<AuditRow>(
    `SELECT id::text, request_id, actor_issuer, actor_subject, action, group_id, secret_version, kek_id, outcome, reason, client_address,
            secret_delivery, recipient_kid
       FROM audit_events ${entries.length ? `WHERE ${entries.map(([column], index) => `${column} = $${index + 1}`).join(' AND ')}` : ''} ORDER BY id`,
    entries.map(([, value]) => value),
  );
  return result.rows;
}

/** Every table in every non-system schema, each row rendered by Postgres as text (bytea as \x hex). */
export async function dumpAllTablesAsText(pool: Pool): Promise<string> {
  const tables = await pool.query<{ schemaname: string; tablename: string }>(
    `SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
  );
  const parts: string[] = [];
  for (const { schemaname, tablename } of tables.rows) {
    const rows = await pool.query<{ row: string }>(`SELECT t::text AS row FROM "${schemaname}"."${tablename}" t`);
    parts.push(`-- ${schemaname}.${tablename}\n${rows.rows.map((row) => row.row).join('\n')}`);
  }
  return parts.join('\n');
}

export async function tableNames(pool: Pool): Promise<string[]> {
  const result = await pool.query<{ name: string }>(
    `SELECT schemaname || '.' || tablename AS name FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  );
  return result.rows.map((row) => row.name);
}
