/**
 * A flood of bad tokens while a certificate worker reads: every worker read succeeds, and the
 * flood adds a bounded number of audit rows (repeated denials of one kind from one address are
 * counted per window, src/audit/denial-audit.ts) while every denial is still accounted for.
 * To make pool starvation visible, each denial's audit INSERT is slowed to 250 ms by a trigger (a
 * slow disk or a lock on the table): a design where every denial waits on the pool would queue
 * the worker's reads behind thousands of them, past the pool's 3 s connection timeout.
 */
import { generateKeyPairSync } from 'node:crypto';
import { Agent, request } from 'node:http';
import type { Pool } from 'pg';
import { LeakEvidence, describeFindings } from '../support/leak-sweep';
import { startTestService, TEST_ISSUER, type TestService } from '../support/test-service';
import { poolFor } from '../support/test-database';
import { CERT_WORKER, groupPath, MANAGEMENT } from './support/api-client';
import { base64url, buildToken, nowSeconds } from '../support/jwt-forgery';
import { createSign } from 'node:crypto';

const FLOOD_REQUESTS = Number(process.env.FLOOD_N ?? 5000);
const FLOOD_CONCURRENCY = 48;
const GROUP = 'flood.target';
const SECRET = 'ps-flood-target-7d1c';

let svc: TestService;
let pool: Pool;
const evidence = new LeakEvidence();
const agent = new Agent({ keepAlive: true, maxSockets: FLOOD_CONCURRENCY + 2 });

beforeAll(async () => {
  svc = await startTestService({
    env: { DATABASE_POOL_MAX: '4', SECRET_READ_RATE_LIMIT_PER_MINUTE: '1000000' },
  });
  pool = poolFor(svc.databaseUrl);
  evidence.logs('service', () => svc.logs());
  evidence.storedSecret(GROUP, SECRET);
  const created = await call('POST', '/v1/device-groups', await svc.token(MANAGEMENT), {
    id: GROUP,
    provisionSecret: SECRET,
  });
  expect(created.status).toBe(201);
  await pool.query(`
    CREATE FUNCTION test_slow_denial_audit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_sleep(0.25); RETURN NEW; END $$;
    CREATE TRIGGER test_slow_denial_audit BEFORE INSERT ON audit_events
      FOR EACH ROW WHEN (NEW.action = 'auth') EXECUTE FUNCTION test_slow_denial_audit();`);
});
let stopped = false;
afterAll(async () => {
  agent.destroy();
  if (!stopped) await svc.stop();
  await pool.end();
});

async function call(method: string, path: string, token: string, body?: unknown) {
  const response = await fetchLike(method, path, token, body);
  evidence.response(method, path, response.status, response.text);
  return response;
}

/** node:http with a keep-alive agent: thousands of requests without thousands of connections. */
function fetchLike(method: string, path: string, token: string, body?: unknown) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${svc.url}${path}`, {
      method,
      agent,
      headers: {
        authorization: `Bearer ${token}`,
        ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Three kinds of bad token: not a JWT, a signature by a key the service does not trust, expired. */
async function badTokens(): Promise<string[]> {
  const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = nowSeconds();
  const claims = { iss: TEST_ISSUER, aud: 'provsec', sub: CERT_WORKER, iat: now, exp: now + 300 };
  const forged = buildToken({ alg: 'ES256', kid: svc.keyId, typ: 'JWT' }, claims, (input) =>
    base64url(createSign('SHA256').update(input).sign({ key: stranger.privateKey, dsaEncoding: 'ieee-p1363' })),
  );
  const expired = await svc.token(CERT_WORKER, { ttlSeconds: -600 });
  return ['not-a-token', forged, expired];
}

test('5,000 bad tokens while a worker reads: every read succeeds, the flood adds a bounded number of audit rows', async () => {
  const startId = (await pool.query<{ id: string }>(`SELECT max(id)::text AS id FROM audit_events`)).rows[0]!.id;
  const tokens = await badTokens();
  const workerToken = await svc.token(CERT_WORKER);

  let sent = 0;
  const floodStatuses = new Map<number, number>();
  let flooding = true;
  const flood = async () => {
    while (sent < FLOOD_REQUESTS) {
      const token = tokens[sent % tokens.length]!;
      sent += 1;
      const { status } = await fetchLike('GET', groupPath(GROUP, '/provision-secret'), token);
      floodStatuses.set(status, (floodStatuses.get(status) ?? 0) + 1);
    }
  };
  const workerStatuses: number[] = [];
  const worker = async () => {
    while (flooding) {
      const res = await call('GET', groupPath(GROUP, '/provision-secret'), workerToken);
      workerStatuses.push(res.status);
      if (res.status === 200)
        expect((JSON.parse(res.text) as { provisionSecret: string }).provisionSecret).toBe(SECRET);
    }
  };
  const reading = worker();
  await Promise.all(Array.from({ length: FLOOD_CONCURRENCY }, flood));
  flooding = false;
  await reading;

  expect(workerStatuses.length).toBeGreaterThanOrEqual(10);
  expect(workerStatuses.filter((status) => status !== 200)).toEqual([]);
  expect(Object.fromEntries(floodStatuses)).toEqual({ 401: FLOOD_REQUESTS });

  // A graceful stop writes the last window's counts.
  await svc.stop();
  stopped = true;
  const rows = await pool.query<{ reason: string; rows: string; occurrences: string }>(
    `SELECT reason, count(*)::text AS rows, sum(occurrences)::text AS occurrences
       FROM audit_events WHERE id > $1 AND action = 'auth' GROUP BY reason ORDER BY reason`,
    [startId],
  );
  const auditRows = rows.rows.reduce((sum, row) => sum + Number(row.rows), 0);
  process.stdout.write(
    `denial flood: ${FLOOD_REQUESTS} bad-token requests, ${workerStatuses.length} worker reads ok, ${auditRows} audit rows added ` +
      `(${rows.rows.map((row) => `${row.reason}: ${row.rows} rows for ${row.occurrences}`).join(', ')})\n`,
  );
  // Three kinds from one address: at most 10 individual rows + 1 counted row each per window.
  expect(auditRows).toBeLessThanOrEqual(3 * 11 * 2);
  expect(rows.rows.map((row) => row.reason)).toEqual(['bad_signature', 'expired', 'malformed']);
  expect(rows.rows.reduce((sum, row) => sum + Number(row.occurrences), 0)).toBe(FLOOD_REQUESTS);

  const report = await evidence.sweep([{ label: 'flood', pool }]);
  expect(describeFindings(report.findings)).toBe('');
}, 60_000);
