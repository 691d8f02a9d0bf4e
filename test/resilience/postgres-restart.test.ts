/**
 * Postgres stopped and restarted under load. The service runs in-process on a Postgres of its own
 * (a child process this test stops with a fast shutdown and starts again on the same data folder
 * and port) while workers create groups and read secrets with valid tokens.
 * Proves: every answer is a 2xx or a clean 503 problem (never a 500, a hang or a stack); the
 * service recovers by itself; nothing acknowledged with 201 is lost; an unacknowledged creation can
 * be retried safely (201 or the idempotent 200); every stored group has its creation audited.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { freePort } from '../support/free-port';
import { describeFindings, LeakEvidence } from '../support/leak-sweep';
import { startPostgresProcess, type PostgresProcess } from '../support/postgres-process';
import { randomKekHex, startTestService, type TestService } from '../support/test-service';
import {
  type ApiClient,
  apiClient,
  is2xx,
  newSecret,
  type Outcome,
  problemDefect,
  runWorkers,
  sleep,
  statusOf,
  waitUntil,
  readOneOf,
} from './support/api-client';

const WORKER = 'system:serviceaccount:provisioning:cert-worker';
const WORKERS = 6;
const OUTAGE_MS = 1500;

type Phase = 'before' | 'down' | 'restarted';

interface Attempt {
  readonly phase: Phase;
  readonly action: 'create' | 'read';
  readonly groupId: string;
  readonly outcome: Outcome;
}

describe('Postgres stopped and restarted under load', () => {
  const evidence = new LeakEvidence();
  const kekHex = randomKekHex();
  let dataDir: string;
  let port: number;
  let postgres: PostgresProcess;
  let svc: TestService;
  let client: ApiClient;
  const lateDatabaseErrors: string[] = [];

  beforeAll(async () => {
    dataDir = join(mkdtempSync(join(tmpdir(), 'provsec-restart-')), 'pg');
    port = await freePort();
    postgres = await startPostgresProcess(dataDir, port);
    svc = await startTestService({
      keyFileContent: { key: kekHex },
      env: { DATABASE_URL: postgres.url, SECRET_READ_RATE_LIMIT_PER_MINUTE: '1000000' },
    });
    client = apiClient(svc.url, { evidence });
    evidence.keyMaterial('kek', kekHex);
    evidence.logs('service', () => svc.logs());
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await svc?.stop();
    await postgres?.stop();
  }, 30_000);

  /** The service's own database, reached directly (a fresh pool: the old one died with the server). */
  async function withDatabase<T>(use: (pool: Pool) => Promise<T>): Promise<T> {
    const pool = new Pool({ connectionString: postgres.url, max: 2 });
    // pg-pool's end() resolves before its clients have closed: one still closing when this test
    // stops Postgres gets 57P01, and a pool without a listener would throw it as an uncaught error.
    pool.on('error', (error) => lateDatabaseErrors.push(error.message));
    try {
      return await use(pool);
    } finally {
      await pool.end();
    }
  }

  test('every request gets a 2xx or a clean 503 problem, the service recovers without a restart, and every 201 survives and opens', async () => {
    const management = await svc.token('management-api');
    const worker = await svc.token(WORKER);
    const acknowledged = new Map<string, string>();
    const unacknowledged = new Map<string, string>();
    const create = async (id: string, secret: string): Promise<Outcome> => {
      evidence.storedSecret(id, secret);
      return client.send('POST', '/v1/device-groups', { token: management, json: { id, provisionSecret: secret } });
    };
    for (let index = 0; index < 10; index += 1) {
      const id = `restart-seed-${index}`;
      const secret = newSecret(id);
      expect(statusOf(await create(id, secret))).toBe(201);
      acknowledged.set(id, secret);
    }

    let phase: Phase = 'before';
    let stop = false;
    const attempts: Attempt[] = [];
    const wrongSecrets: string[] = [];
    const load = runWorkers(
      WORKERS,
      () => stop,
      async (workerIndex, iteration) => {
        const startedIn = phase;
        let attempt: Attempt;
        if (iteration % 2 === 0) {
          const id = `restart-w${workerIndex}-${iteration}`;
          const secret = newSecret(id);
          const outcome = await create(id, secret);
          (statusOf(outcome) === 201 ? acknowledged : unacknowledged).set(id, secret);
          attempt = { phase: startedIn, action: 'create', groupId: id, outcome };
        } else {
          const read = await readOneOf(
            client,
            worker,
            [...acknowledged.keys()],
            { workerIndex, iteration },
            (id, secret) => secret === acknowledged.get(id),
          );
          if (read.wrongSecret) wrongSecrets.push(read.id);
          attempt = { phase: startedIn, action: 'read', groupId: read.id, outcome: read.outcome };
        }
        attempts.push(attempt);
        // A well-behaved client backs off a little after a 503 (it carries Retry-After).
        if (!is2xx(attempt.outcome)) await sleep(20);
      },
    );
    const count = (predicate: (attempt: Attempt) => boolean) => attempts.filter(predicate).length;

    const startedAt = Date.now();
    await waitUntil('the load runs against a healthy database', () => count((a) => is2xx(a.outcome)) >= 40, 15_000);
    phase = 'down';
    await postgres.stop();
    const stoppedAt = Date.now();
    // Down for a while (not just a blip): many requests meet the closed port.
    await waitUntil(
      'the outage shows as 503 answers',
      () =>
        Date.now() - stoppedAt >= OUTAGE_MS && count((a) => a.phase === 'down' && statusOf(a.outcome) === 503) >= 20,
      15_000,
    );
    postgres = await startPostgresProcess(dataDir, port);
    phase = 'restarted';
    const restartedAt = Date.now();
    await waitUntil(
      'the same service instance answers 2xx again',
      () => count((a) => a.phase === 'restarted' && is2xx(a.outcome)) >= 60,
      20_000,
    );
    stop = true;
    await load;

    // Every answer is a success or a clean "retry shortly"; nothing else, whatever the timing.
    const defects = attempts
      .filter((attempt) => !is2xx(attempt.outcome))
      .map((attempt) => ({ attempt, defect: problemDefect(attempt.outcome, 503) }))
      .filter(({ defect }) => defect !== undefined)
      .map(({ attempt, defect }) => `${attempt.phase} ${attempt.action} ${attempt.groupId}: ${defect}`);
    expect(defects).toEqual([]);
    expect(wrongSecrets).toEqual([]);
    const unavailable = attempts.filter((attempt) => statusOf(attempt.outcome) === 503);
    expect(unavailable.length).toBeGreaterThan(0);
    for (const attempt of unavailable.slice(0, 50)) {
      expect(attempt.outcome.kind === 'response' && attempt.outcome.headers['retry-after']).toBe('1');
    }

    // Nothing acknowledged is lost: in the table, and it opens to the same bytes.
    const ids = [...acknowledged.keys()];
    const stored = await withDatabase((pool) =>
      pool.query<{ id: string }>(
        'SELECT id FROM ota_groups WHERE id = ANY($1) AND provision_secret_envelope IS NOT NULL',
        [ids],
      ),
    );
    expect(stored.rows.map((row) => row.id).sort()).toEqual([...ids].sort());
    for (const [id, secret] of acknowledged) {
      const read = await client.send('GET', `/v1/device-groups/${id}/provision-secret`, { token: worker });
      expect({
        id,
        status: statusOf(read),
        secret:
          read.kind === 'response'
            ? (JSON.parse(read.body) as { provisionSecret?: string }).provisionSecret
            : undefined,
      }).toEqual({ id, status: 200, secret });
    }

    // A creation that got a 503 may or may not have been stored: a retry settles it either way.
    for (const [id, secret] of unacknowledged) {
      const retried = await create(id, secret);
      expect({ id, settled: [200, 201].includes(statusOf(retried) as number) }).toEqual({ id, settled: true });
      const read = await client.send('GET', `/v1/device-groups/${id}/provision-secret`, { token: worker });
      expect(read.kind === 'response' && (JSON.parse(read.body) as { provisionSecret?: string }).provisionSecret).toBe(
        secret,
      );
    }

    // Every stored group has its creation on record (a 201, or the retry's idempotent 200).
    const unaudited = await withDatabase((pool) =>
      pool.query<{ id: string }>(
        `SELECT g.id FROM ota_groups g
          WHERE NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.group_id = g.id AND a.action = 'device-group.create' AND a.outcome = 'ok')`,
      ),
    );
    expect(unaudited.rows).toEqual([]);

    const ready = await client.send('GET', '/readyz');
    expect(statusOf(ready)).toBe(200);
    const byPhase = (phaseName: Phase) =>
      `${count((a) => a.phase === phaseName && is2xx(a.outcome))} ok / ${count((a) => a.phase === phaseName && !is2xx(a.outcome))} 503`;
    process.stdout.write(
      `postgres restart: ${attempts.length} requests (${WORKERS} workers); before ${byPhase('before')}, down ${byPhase('down')}, after restart ${byPhase('restarted')}; ` +
        `outage ${restartedAt - stoppedAt} ms, load ${Date.now() - startedAt} ms; ${acknowledged.size} acknowledged, ${unacknowledged.size} retried\n`,
    );
  }, 90_000);

  test('leak sweep: no secret or key bytes in the logs, tables or responses, except authorized secret reads', async () => {
    const report = await withDatabase((pool) => evidence.sweep([{ label: 'restart', pool }]));
    expect(describeFindings(report.findings)).toBe('');
    expect(report.counts.authorizedReads).toBeGreaterThan(0);
    expect(report.counts.logLines).toBeGreaterThan(0);
  }, 30_000);
});
