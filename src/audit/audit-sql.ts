/**
 * The audit_events INSERT, shared by the audit log and by the store's audited writes, so a change
 * and its audit record can be one statement: both commit, or neither does.
 */
export const AUDIT_INSERT_COLUMNS =
  'request_id, actor_issuer, actor_subject, action, group_id, secret_version, kek_id, outcome, reason, client_address';

/** Who is asking: every audit record names them, and so does the record written in the same statement as a change. */
export interface Actor {
  readonly requestId: string;
  readonly actorIssuer: string | null;
  readonly actorSubject: string | null;
  readonly clientAddress: string | null;
}

/**
 * A data-modifying CTE named `audit` that records `action` with outcome ok for every row of the CTE
 * `source` (which must expose id, secret_version and kek_id). `first` is the number of the first
 * of the four actor parameters; `action` is a fixed literal from our code, never input.
 */
export function auditCte(source: string, action: string, reason: string | null, first: number): string {
  const reasonSql = reason === null ? 'NULL' : `'${reason}'`;
  return `audit AS (
    INSERT INTO audit_events (${AUDIT_INSERT_COLUMNS})
    SELECT $${first}, $${first + 1}, $${first + 2}, '${action}', ${source}.id, ${source}.secret_version, ${source}.kek_id, 'ok', ${reasonSql}, $${first + 3}
      FROM ${source}
  )`;
}

export function actorParameters(actor: Actor): unknown[] {
  return [actor.requestId, actor.actorIssuer, actor.actorSubject, actor.clientAddress];
}
