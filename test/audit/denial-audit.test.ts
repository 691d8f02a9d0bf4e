/**
 * The bounded denial recorder against the real audit log on a real Postgres: individual rows up
 * to the per-window allowance, then one counted row per source and window; bounded writes in
 * flight; bounded sources; counts kept (and logged) when the window's write fails; written at stop.
 */
import type { Pool } from 'pg';
import { SQL_DIR } from '../../src/app-root';
import { createAuditLog, type AuditEventInput, type AuditLog } from '../../src/audit/audit-log';
import { createDenialAudit, type DenialAuditOptions } from '../../src/audit/denial-audit';
import { runMigrations } from '../../src/db/migrate';
import { capturedLogger } from '../support/log-capture';
import { createTestDatabase, poolFor } from '../support/test-database';

let pool: Pool;
let audit: AuditLog;
beforeAll(async () => {
  pool = poolFor(await createTestDatabase('denials'));
  await runMigrations(pool, SQL_DIR);
  audit = createAuditLog(pool);
});
afterAll(() => pool.end());

let sequence = 0;
function denial(overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  sequence += 1;
  return {
    requestId: `req-${sequence}`,
    actorIssuer: null,
    actorSubject: null,
    action: 'auth',
    groupId: null,
    secretVersion: null,
    kekId: null,
    outcome: 'denied',
    reason: 'malformed',
    clientAddress: '10.0.0.7',
    ...overrides,
  };
}

interface Row {
  request_id: string;
  reason: string;
  client_address: string | null;
  occurrences: number;
  first_ms: string;
  last_ms: string | null;
}
async function rowsSince(startId: string): Promise<Row[]> {
  const result = await pool.query<Row>(
    `SELECT request_id, reason, client_address, occurrences,
            (extract(epoch FROM occurred_at) * 1000)::bigint::text AS first_ms,
            (extract(epoch FROM last_occurred_at) * 1000)::bigint::text AS last_ms
       FROM audit_events WHERE id > $1 ORDER BY id`,
    [startId],
  );
  return result.rows;
}
async function lastId(): Promise<string> {
  return (await pool.query<{ id: string }>(`SELECT coalesce(max(id), 0)::text AS id FROM audit_events`)).rows[0]!.id;
}

const options = (overrides: Partial<DenialAuditOptions> = {}): DenialAuditOptions => ({
  windowMs: 3_600_000,
  individualPerWindow: 3,
  maxSources: 100,
  maxConcurrentWrites: 2,
  ...overrides,
});

test('a source’s first denials of a window are rows of their own; the rest one row with their count and first/last time', async () => {
  const start = await lastId();
  let clock = 1_700_000_000_000;
  const denials = createDenialAudit({ audit, logger: capturedLogger().logger }, options({ nowMs: () => clock }));
  const sent = Array.from({ length: 50 }, () => denial());
  for (const event of sent) {
    clock += 10;
    await denials.record(event);
  }
  expect(await rowsSince(start)).toHaveLength(3);
  await denials.flush();
  const rows = await rowsSince(start);
  expect(rows.map((row) => [row.request_id, row.occurrences])).toEqual([
    ['req-1', 1],
    ['req-2', 1],
    ['req-3', 1],
    [sent[3]!.requestId, 47],
  ]);
  expect(rows[3]).toMatchObject({ first_ms: String(1_700_000_000_040), last_ms: String(1_700_000_000_500) });
  // A new window: the allowance starts again.
  await denials.record(denial());
  expect(await rowsSince(start)).toHaveLength(5);
  await denials.stop();
});

test('another address, reason or actor is another source with its own rows', async () => {
  const start = await lastId();
  const denials = createDenialAudit({ audit, logger: capturedLogger().logger }, options({ individualPerWindow: 1 }));
  for (let round = 0; round < 5; round += 1) {
    await denials.record(denial());
    await denials.record(denial({ clientAddress: '10.0.0.8' }));
    await denials.record(denial({ reason: 'expired' }));
    await denials.record(denial({ actorSubject: 'worker', actorIssuer: 'iss', action: 'device-group.read' }));
  }
  await denials.stop();
  const rows = await rowsSince(start);
  expect(rows).toHaveLength(8);
  expect(rows.reduce((sum, row) => sum + row.occurrences, 0)).toBe(20);
});

test('denial writes in flight never exceed maxConcurrentWrites: the others are counted, not queued on the pool', async () => {
  const start = await lastId();
  let inFlight = 0;
  let mostInFlight = 0;
  const watched: Pick<AuditLog, 'record' | 'recordRepeated'> = {
    async record(event) {
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      try {
        await audit.record(event);
      } finally {
        inFlight -= 1;
      }
    },
    recordRepeated: (events) => audit.recordRepeated(events),
  };
  const denials = createDenialAudit(
    { audit: watched, logger: capturedLogger().logger },
    options({ individualPerWindow: 1000, maxConcurrentWrites: 2 }),
  );
  await Promise.all(Array.from({ length: 200 }, () => denials.record(denial())));
  await denials.stop();
  expect(mostInFlight).toBe(2);
  const rows = await rowsSince(start);
  expect(rows.reduce((sum, row) => sum + row.occurrences, 0)).toBe(200);
  expect(rows.length).toBeLessThan(200);
});

test('past maxSources, denials are counted per kind without address or actor', async () => {
  const start = await lastId();
  const denials = createDenialAudit(
    { audit, logger: capturedLogger().logger },
    options({ individualPerWindow: 1, maxSources: 5 }),
  );
  for (let address = 0; address < 100; address += 1)
    await denials.record(denial({ clientAddress: `10.1.0.${address}` }));
  await denials.stop();
  const rows = await rowsSince(start);
  // Five sources with a row each, then the anonymous source of that kind: one row, then a counted one.
  expect(rows).toHaveLength(7);
  expect(rows.slice(5).map((row) => [row.client_address, row.occurrences])).toEqual([
    [null, 1],
    [null, 94],
  ]);
});

test('when the window’s write fails, its counts are logged and written with the next window', async () => {
  const start = await lastId();
  const log = capturedLogger();
  const denials = createDenialAudit({ audit, logger: log.logger }, options({ individualPerWindow: 0 }));
  for (let index = 0; index < 7; index += 1) await denials.record(denial({ clientAddress: '10.2.0.1' }));
  await pool.query(`ALTER TABLE audit_events ADD CONSTRAINT test_block_all CHECK (false) NOT VALID`);
  try {
    await denials.flush();
  } finally {
    await pool.query(`ALTER TABLE audit_events DROP CONSTRAINT test_block_all`);
  }
  expect(log.text()).toContain('repeated denials could not be written to the audit log');
  expect(log.text()).toContain('"occurrences":7');
  await denials.record(denial({ clientAddress: '10.2.0.1' }));
  await denials.stop();
  expect((await rowsSince(start)).map((row) => [row.client_address, row.occurrences])).toEqual([['10.2.0.1', 8]]);
});

test('an individual write that fails rejects, so the caller still refuses (with a 5xx)', async () => {
  const denials = createDenialAudit({ audit, logger: capturedLogger().logger }, options());
  await pool.query(`ALTER TABLE audit_events ADD CONSTRAINT test_block_all CHECK (false) NOT VALID`);
  try {
    await expect(denials.record(denial())).rejects.toThrow(/test_block_all/);
  } finally {
    await pool.query(`ALTER TABLE audit_events DROP CONSTRAINT test_block_all`);
  }
  await denials.stop();
});
