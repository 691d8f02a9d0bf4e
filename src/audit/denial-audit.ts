/**
 * Denials, audited at a bounded cost. Every refused token, missing permission and rate-limited read
 * is still recorded, but a flood of them from one client cannot grow `audit_events` without bound
 * nor crowd the pool:
 * - a "source" is one kind of denial (action, outcome, reason) from one client address and actor,
 *   about one group; per window, a source's first `individualPerWindow` denials are written one by
 *   one, awaited like any request's audit record (full detail, each under its own request id);
 * - after that, the source's denials are only counted in memory and written at the window's end
 *   as ONE row carrying their count (`occurrences`) and first/last times;
 * - at most `maxConcurrentWrites` individual denial writes are in flight at once (a denial over
 *   that is counted instead), so denials can never hold more of the pool than that;
 * - at most `maxSources` sources are tracked per window; denials from further sources are counted
 *   per kind with no address, actor or group (a flood from many addresses stays bounded too).
 * Rows per window: at most (maxSources + kinds) x (individualPerWindow + 1), whatever the rate.
 * What a crash loses: the counts not yet written (at most one window of denials beyond each source's
 * individual ones); the individual rows are committed before their 401/403/429 is sent.
 */
import { needs } from '../crypto/needs';
import type { Logger } from '../log/logger';
import type { AuditAction, AuditEventInput, AuditLog, RepeatedEventInput } from './audit-log';
import type { Actor } from './audit-sql';

/** A denial's record: who was refused what, on which group, why. A denial released nothing, so it names no secret version or KEK. */
export function deniedEvent(
  actor: Actor,
  refused: { readonly action: AuditAction; readonly groupId: string | null; readonly reason: string },
): AuditEventInput {
  return { ...actor, ...refused, secretVersion: null, kekId: null, outcome: 'denied' };
}

export interface DenialAuditOptions {
  readonly windowMs: number;
  readonly individualPerWindow: number;
  readonly maxSources: number;
  readonly maxConcurrentWrites: number;
  /** The clock, for tests: milliseconds since the epoch. */
  readonly nowMs?: () => number;
}

export const DENIAL_AUDIT_DEFAULTS = {
  /** Enough for a misconfigured worker's retries to show one by one; a flood stops at this. */
  individualPerWindow: 10,
  maxSources: 1000,
  /** Of the pool's DATABASE_POOL_MAX (default 10): denials can never take the rest from workers. */
  maxConcurrentWrites: 2,
} as const;

export interface DenialAudit {
  /**
   * Records one denial: resolves once it is written (individual) or counted (repeated); rejects
   * only if its individual write failed (the caller still refuses the request).
   */
  record(event: AuditEventInput): Promise<void>;
  /** Writes the window's counted denials and starts a new window (the timer calls this). */
  flush(): Promise<void>;
  /** Stops the timer and writes what is counted (at shutdown, before the pool closes). */
  stop(): Promise<void>;
}

interface Source {
  individualWritten: number;
  repeated: { event: AuditEventInput; occurrences: number; firstAtMs: number; lastAtMs: number } | undefined;
}

function sourceKey(event: AuditEventInput): string {
  return JSON.stringify([
    event.action,
    event.outcome,
    event.reason,
    event.clientAddress,
    event.actorIssuer,
    event.actorSubject,
    event.groupId,
  ]);
}

/** Past maxSources: the kind of denial only, without who or where. */
function anonymised(event: AuditEventInput): AuditEventInput {
  return { ...event, clientAddress: null, actorIssuer: null, actorSubject: null, groupId: null };
}

export function createDenialAudit(
  deps: { audit: Pick<AuditLog, 'record' | 'recordRepeated'>; logger: Logger },
  options: DenialAuditOptions,
): DenialAudit {
  const { windowMs, individualPerWindow, maxSources, maxConcurrentWrites } = options;
  const nowMs = options.nowMs ?? Date.now;
  needs(Number.isInteger(windowMs) && windowMs > 0, () => new RangeError('denial audit window must be positive'));
  needs(individualPerWindow >= 0 && maxSources >= 1 && maxConcurrentWrites >= 1, () => new RangeError('bad bounds'));

  let sources = new Map<string, Source>();
  let writesInFlight = 0;
  let flushing: Promise<void> = Promise.resolve();

  function sourceFor(event: AuditEventInput): { source: Source; event: AuditEventInput } {
    let key = sourceKey(event);
    let source = sources.get(key);
    if (source === undefined && sources.size >= maxSources) {
      event = anonymised(event);
      key = sourceKey(event);
      source = sources.get(key);
    }
    if (source === undefined) {
      source = { individualWritten: 0, repeated: undefined };
      sources.set(key, source);
    }
    return { source, event };
  }

  function count(source: Source, event: AuditEventInput, occurrences: number, firstAtMs: number, lastAtMs: number) {
    const repeated = source.repeated;
    if (repeated === undefined) {
      source.repeated = { event, occurrences, firstAtMs, lastAtMs };
      return;
    }
    repeated.occurrences += occurrences;
    if (firstAtMs < repeated.firstAtMs) {
      repeated.firstAtMs = firstAtMs;
      repeated.event = event;
    }
    repeated.lastAtMs = Math.max(repeated.lastAtMs, lastAtMs);
  }

  async function writeWindow(): Promise<void> {
    const ended = [...sources.values()].flatMap((source) => (source.repeated ? [source.repeated] : []));
    sources = new Map();
    if (ended.length === 0) return;
    const rows: RepeatedEventInput[] = ended.map((repeated) => ({
      ...repeated.event,
      occurrences: repeated.occurrences,
      firstOccurredAt: new Date(repeated.firstAtMs),
      lastOccurredAt: new Date(repeated.lastAtMs),
    }));
    try {
      await deps.audit.recordRepeated(rows);
    } catch (error) {
      // Kept for the next window (merged by source, so still bounded), and in this log line meanwhile.
      deps.logger.error(
        {
          err: error,
          repeatedDenials: rows.map(({ action, reason, clientAddress, occurrences }) => ({
            action,
            reason,
            clientAddress,
            occurrences,
          })),
        },
        'repeated denials could not be written to the audit log; retrying next window',
      );
      for (const repeated of ended) {
        const { source, event } = sourceFor(repeated.event);
        count(source, event, repeated.occurrences, repeated.firstAtMs, repeated.lastAtMs);
      }
    }
  }

  const flush = (): Promise<void> => {
    flushing = flushing.then(writeWindow);
    return flushing;
  };
  const timer = setInterval(() => void flush(), windowMs);
  timer.unref();

  return {
    async record(input) {
      const { source, event } = sourceFor(input);
      if (source.individualWritten < individualPerWindow && writesInFlight < maxConcurrentWrites) {
        source.individualWritten += 1;
        writesInFlight += 1;
        try {
          await deps.audit.record(event);
        } finally {
          writesInFlight -= 1;
        }
        return;
      }
      const atMs = nowMs();
      count(source, event, 1, atMs, atMs);
    },
    flush,
    async stop() {
      clearInterval(timer);
      await flush();
    },
  };
}
