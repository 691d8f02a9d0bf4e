/**
 * The audit log: append and query `audit_events`. Records carry who (token issuer and subject),
 * what, which group, secret version and KEK id, the outcome and a short reason code. Never secret
 * or key material: callers pass ids and codes only, and the types leave no field for more.
 */
import type { Pool } from 'pg';
import { groupGlobToSqlLike, type GroupScope } from '../auth/group-glob';
import { AUDIT_INSERT_COLUMNS as INSERT_COLUMNS, type Actor } from './audit-sql';

export type AuditAction =
  | 'device-group.create'
  | 'device-group.read'
  | 'device-group.list'
  | 'device-group.delete'
  | 'provision-secret.read'
  | 'provision-secret.rotate'
  | 'audit.read'
  | 'keys.read'
  | 'auth';

export const AUDIT_OUTCOMES = ['ok', 'denied', 'error'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

export interface AuditEventInput extends Actor {
  readonly action: AuditAction;
  readonly groupId: string | null;
  readonly secretVersion: number | null;
  readonly kekId: string | null;
  readonly outcome: AuditOutcome;
  /** A short machine code (`bad_signature`, `decryption_failed`...), never free text from input. */
  readonly reason: string | null;
}

/** How a secret read was answered: plaintext JSON, or a JWE to the worker key named by its kid. */
export type SecretDelivery = { readonly kind: 'json' } | { readonly kind: 'jwe'; readonly recipientKid: string };

export interface AuditEvent extends AuditEventInput {
  readonly id: string;
  /** When it happened; for a row standing for repeated denials, the first of them. */
  readonly occurredAt: Date;
  /** Set on `provision-secret.read` records that released the secret; null elsewhere. */
  readonly secretDelivery: 'json' | 'jwe' | null;
  readonly recipientKid: string | null;
  /** How many events the row stands for: 1, or the count of repeated denials (denial-audit.ts). */
  readonly occurrences: number;
  /** The last of the repeated denials; null when the row stands for one event. */
  readonly lastOccurredAt: Date | null;
}

/** Identical denials counted in memory, written as one row (see denial-audit.ts). */
export interface RepeatedEventInput extends AuditEventInput {
  readonly occurrences: number;
  readonly firstOccurredAt: Date;
  readonly lastOccurredAt: Date;
}

export interface AuditQuery {
  /** Only events of these groups; events with no group only in the all-groups scope. */
  readonly scope: GroupScope;
  readonly groupId?: string;
  readonly actor?: string;
  readonly since?: Date;
  readonly limit: number;
  /** Cursor: the id of the last event of the previous page. */
  readonly afterId?: string;
}

interface AuditRow {
  id: string;
  occurred_at: Date;
  request_id: string;
  actor_issuer: string | null;
  actor_subject: string | null;
  action: AuditAction;
  group_id: string | null;
  secret_version: number | null;
  kek_id: string | null;
  outcome: AuditOutcome;
  reason: string | null;
  client_address: string | null;
  secret_delivery: 'json' | 'jwe' | null;
  recipient_kid: string | null;
  occurrences: number;
  last_occurred_at: Date | null;
}

function insertParameters(event: AuditEventInput): unknown[] {
  return [
    event.requestId,
    event.actorIssuer,
    event.actorSubject,
    event.action,
    event.groupId,
    event.secretVersion,
    event.kekId,
    event.outcome,
    event.reason,
    event.clientAddress,
  ];
}

function toEvent(row: AuditRow): AuditEvent {
  return {
    id: row.id,
    occurredAt: row.occurred_at,
    requestId: row.request_id,
    actorIssuer: row.actor_issuer,
    actorSubject: row.actor_subject,
    action: row.action,
    groupId: row.group_id,
    secretVersion: row.secret_version,
    kekId: row.kek_id,
    outcome: row.outcome,
    reason: row.reason,
    clientAddress: row.client_address,
    secretDelivery: row.secret_delivery,
    recipientKid: row.recipient_kid,
    occurrences: row.occurrences,
    lastOccurredAt: row.last_occurred_at,
  };
}

export function createAuditLog(pool: Pool) {
  return {
    /** Appends one event; resolves once it is committed (autocommit), rejects if it was not. */
    async record(event: AuditEventInput): Promise<void> {
      await pool.query(
        `INSERT INTO audit_events (${INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        insertParameters(event),
      );
    },

    /** Appends one row per entry, all in one statement (one round trip, one connection). */
    async recordRepeated(events: readonly RepeatedEventInput[]): Promise<void> {
      if (events.length === 0) return;
      // Each row's parameters in INSERT_COLUMNS order (insertParameters, the one place that knows
      // it) and the three repetition columns, turned into one array per column for unnest.
      const rows = events.map((event) => [
        ...insertParameters(event),
        event.firstOccurredAt,
        event.occurrences,
        event.lastOccurredAt,
      ]);
      const columns = (rows[0] ?? []).map((_, index) => rows.map((row) => row[index]));
      await pool.query(
        `INSERT INTO audit_events (${INSERT_COLUMNS}, occurred_at, occurrences, last_occurred_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[],
                              $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::int[], $13::timestamptz[])`,
        columns,
      );
    },

    async query(filter: AuditQuery): Promise<AuditEvent[]> {
      // The scope is applied in SQL, so a page (and its cursor) only ever holds visible events.
      const groupLikePatterns = filter.scope.allGroups ? [] : filter.scope.globs.map(groupGlobToSqlLike);
      const result = await pool.query<AuditRow>(
        `SELECT id::text, occurred_at, request_id, actor_issuer, actor_subject, action, group_id, secret_version, kek_id, outcome, reason, client_address,
                secret_delivery, recipient_kid,
                occurrences, last_occurred_at
           FROM audit_events
          WHERE ($1::text IS NULL OR group_id = $1)
            AND ($2::text IS NULL OR actor_subject = $2)
            AND ($3::timestamptz IS NULL OR occurred_at >= $3)
            AND ($4::bigint IS NULL OR id > $4)
            AND ($6::boolean OR group_id LIKE ANY ($7::text[]))
          ORDER BY id
          LIMIT $5`,
        [
          filter.groupId ?? null,
          filter.actor ?? null,
          filter.since ?? null,
          filter.afterId ?? null,
          filter.limit,
          filter.scope.allGroups,
          groupLikePatterns,
        ],
      );
      return result.rows.map(toEvent);
    },
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
