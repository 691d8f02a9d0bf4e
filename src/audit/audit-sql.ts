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

/** The outcome and reason columns of a record, as SQL over the source row (fixed text from our code). */
export interface AuditResultSql {
  readonly outcome: string;
  readonly reason: string;
  /** How a secret read was delivered (secret_delivery, recipient_kid): provision-secret.read only. */
  readonly delivery?: { readonly secretDelivery: string; readonly recipientKid: string };
}

const OK: AuditResultSql = { outcome: "'ok'", reason: 'NULL' };

/**
 * A data-modifying CTE named `audit` that records `action` for every row of the CTE `source` (which
 * must expose id, secret_version and kek_id), with outcome ok unless `result` computes it from the
 * row. `first` is the number of the first of the four actor parameters; `action` and `result` are
 * fixed text from our code, never input.
 */
export function auditCte(source: string, action: string, first: number, result: AuditResultSql = OK): string {
  const { delivery } = result;
  return `audit AS (
    INSERT INTO audit_events (${AUDIT_INSERT_COLUMNS}${delivery ? ', secret_delivery, recipient_kid' : ''})
    SELECT $${first}, $${first + 1}, $${first + 2}, '${action}', ${source}.id, ${source}.secret_version, ${source}.kek_id,
           ${result.outcome}, ${result.reason}, $${first + 3}${delivery ? `, ${delivery.secretDelivery}, ${delivery.recipientKid}` : ''}
      FROM ${source}
  )`;
}

export function actorParameters(actor: Actor): unknown[] {
  return [actor.requestId, actor.actorIssuer, actor.actorSubject, actor.clientAddress];
}
