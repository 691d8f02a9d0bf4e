/**
 * SIGTERM under load, on the compiled service as a child process (what Kubernetes stops).
 * To have requests provably in flight when the signal lands, the test holds an ACCESS EXCLUSIVE
 * lock on ota_groups: every worker's request then waits inside Postgres (seen in
 * pg_stat_activity), and two uploads have been accepted by the server (100 Continue) with half
 * their body sent.
 * Proves: every request in flight at the signal finishes with a 2xx (and what it created is
 * stored); requests sent after it are refused cleanly (connection refused, or a 503 problem); the
 * process drains and exits with code 0.
 */
import { request, type ClientRequest } from 'node:http';
import { Pool } from 'pg';
import { describeFindings, LeakEvidence } from '../support/leak-sweep';
import { createTestDatabase } from '../support/test-database';
import {
  type ApiClient,
  apiClient,
  is2xx,
  newSecret,
  type Outcome,
  problemDefect,
  statusOf,
  waitUntil,
  readOneOf,
} from './support/api-client';
import { startServiceProcess, type ServiceProcess } from './support/service-process';

const WORKER = 'system:serviceaccount:provisioning:cert-worker';
const WORKERS = 6;

interface Attempt {
  readonly sentAfterSignal: boolean;
  readonly action: 'create' | 'read' | 'upload';
  readonly groupId: string;
  readonly outcome: Outcome;
}

/** A refusal a client can act on: nobody listening any more, or a clean "unavailable". */
function refusedCleanly(outcome: Outcome): boolean {
  return (
    (outcome.kind === 'network-error' && outcome.code === 'ECONNREFUSED') || problemDefect(outcome, 503) === undefined
  );
}

/**
 * A creation whose headers the server has accepted (it answered 100 Continue, so the request is
 * dispatched and counted in flight) and whose body is only half sent until `finish()`.
 */
async function startHalfSentUpload(
  baseUrl: string,
  token: string,
  body: string,
  evidence: LeakEvidence,
): Promise<{ finish(): void; outcome: Promise<Outcome> }> {
  const { hostname, port } = new URL(baseUrl);
  const half = Math.floor(body.length / 2);
  let req: ClientRequest | undefined;
  const outcome = new Promise<Outcome>((resolve) => {
    req = request(
      {
        host: hostname,
        port,
        path: '/v1/device-groups',
        method: 'POST',
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          expect: '100-continue',
        },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        res.on('end', () => {
          evidence.response('POST', '/v1/device-groups', res.statusCode ?? 0, text);
          resolve({ kind: 'response', status: res.statusCode ?? 0, headers: res.headers, body: text });
        });
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ kind: 'network-error', code: error.code ?? error.message }),
    );
  });
  const upload = req as unknown as ClientRequest;
  await new Promise<void>((resolve, reject) => {
    upload.once('continue', () => resolve());
    void outcome.then((early) => reject(new Error(`the upload ended before 100 Continue: ${statusOf(early)}`)));
    upload.flushHeaders();
  });
  upload.write(body.slice(0, half));
  return { finish: () => upload.end(body.slice(half)), outcome };
}

describe('SIGTERM under load (the compiled service as a child process)', () => {
  const evidence = new LeakEvidence();
  let databaseUrl: string;
  let admin: Pool;
  let proc: ServiceProcess;
  let client: ApiClient;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase('sigterm');
    admin = new Pool({ connectionString: databaseUrl, max: 3 });
    proc = await startServiceProcess({
      databaseUrl,
      env: { SHUTDOWN_TIMEOUT_MS: '20000', DATABASE_POOL_MAX: '10', SECRET_READ_RATE_LIMIT_PER_MINUTE: '1000000' },
    });
    client = apiClient(proc.url, { evidence });
    evidence.logs('service-process', () => proc.output());
    evidence.keyMaterial('kek', proc.kekHex);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
    await admin?.end();
  });

  test('requests in flight at the signal finish with 2xx, new ones are refused cleanly, and the process exits 0', async () => {
    const management = await proc.token('management-api');
    const worker = await proc.token(WORKER);
    const known = new Map<string, string>();
    const create = (id: string, secret: string) => {
      evidence.storedSecret(id, secret);
      return client.send('POST', '/v1/device-groups', { token: management, json: { id, provisionSecret: secret } });
    };
    for (let index = 0; index < 4; index += 1) {
      const id = `sigterm-seed-${index}`;
      const secret = newSecret(id);
      expect(statusOf(await create(id, secret))).toBe(201);
      known.set(id, secret);
    }

    let signalled = false;
    const attempts: Attempt[] = [];
    const wrongReads: string[] = [];
    // Each worker runs until it has sent one request after the signal (which must be refused).
    const load = Promise.all(
      Array.from({ length: WORKERS }, async (_, workerIndex) => {
        for (let iteration = 0; ; iteration += 1) {
          const sentAfterSignal = signalled;
          let attempt: Attempt;
          if (iteration % 2 === 0) {
            const id = `sigterm-w${workerIndex}-${iteration}`;
            const secret = newSecret(id);
            const outcome = await create(id, secret);
            if (statusOf(outcome) === 201) known.set(id, secret);
            attempt = { sentAfterSignal, action: 'create', groupId: id, outcome };
          } else {
            const read = await readOneOf(
              client,
              worker,
              [...known.keys()],
              { workerIndex, iteration },
              (id, secret) => secret === known.get(id),
            );
            if (read.wrongSecret) wrongReads.push(read.id);
            attempt = { sentAfterSignal, action: 'read', groupId: read.id, outcome: read.outcome };
          }
          attempts.push(attempt);
          if (sentAfterSignal) return;
        }
      }),
    );
    await waitUntil('the load runs', () => attempts.filter((attempt) => is2xx(attempt.outcome)).length >= 60, 15_000);

    // Hold the table: every worker's next request waits inside Postgres, in flight for sure.
    const lock = await admin.connect();
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE ota_groups IN ACCESS EXCLUSIVE MODE');
    const uploadSecrets = [newSecret('sigterm-upload-0'), newSecret('sigterm-upload-1')];
    uploadSecrets.forEach((secret, index) => evidence.storedSecret(`sigterm-upload-${index}`, secret));
    const uploads = await Promise.all(
      uploadSecrets.map((secret, index) =>
        startHalfSentUpload(
          proc.url,
          management,
          JSON.stringify({ id: `sigterm-upload-${index}`, provisionSecret: secret }),
          evidence,
        ),
      ),
    );
    const waitingOnLock = async () =>
      (
        await admin.query<{ waiting: number }>(
          "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'provsec' AND wait_event_type = 'Lock'",
        )
      ).rows[0]?.waiting ?? 0;
    await waitUntil(
      `all ${WORKERS} workers' requests wait on the lock`,
      async () => (await waitingOnLock()) >= WORKERS,
      15_000,
    );

    signalled = true;
    proc.child.kill('SIGTERM');
    await waitUntil(
      'the service logs that it is shutting down',
      () => proc.output().includes('"msg":"shutting down"'),
      10_000,
    );

    // New requests on fresh connections: nobody is listening any more.
    const fresh = apiClient(proc.url, { keepAlive: false, evidence });
    const lateSecret = newSecret('sigterm-after-signal');
    evidence.storedSecret('sigterm-after-signal', lateSecret);
    const probes = [
      await fresh.send('GET', '/healthz'),
      await fresh.send('GET', `/v1/device-groups/sigterm-seed-0/provision-secret`, { token: worker }),
      await fresh.send('POST', '/v1/device-groups', {
        token: management,
        json: { id: 'sigterm-after-signal', provisionSecret: lateSecret },
      }),
    ];
    fresh.close();
    expect(probes.filter((outcome) => !refusedCleanly(outcome)).map(statusOf)).toEqual([]);

    // Let the in-flight work finish: complete the uploads, release the table.
    for (const upload of uploads) upload.finish();
    await waitUntil(
      'the uploads wait on the lock too',
      async () => (await waitingOnLock()) >= WORKERS + uploads.length,
      10_000,
    );
    await lock.query('COMMIT');
    lock.release();
    const uploadOutcomes = await Promise.all(uploads.map((upload) => upload.outcome));
    await load;
    const exitCode = await proc.exited;

    const inFlight = attempts.filter((attempt) => !attempt.sentAfterSignal);
    expect(
      inFlight
        .filter((attempt) => !is2xx(attempt.outcome))
        .map((attempt) => `${attempt.action} ${attempt.groupId}: ${statusOf(attempt.outcome)}`),
    ).toEqual([]);
    expect(uploadOutcomes.map(statusOf)).toEqual([201, 201]);
    const afterSignal = attempts.filter((attempt) => attempt.sentAfterSignal);
    expect(afterSignal).toHaveLength(WORKERS);
    expect(
      afterSignal
        .filter((attempt) => !refusedCleanly(attempt.outcome))
        .map((attempt) => `${attempt.action}: ${statusOf(attempt.outcome)}`),
    ).toEqual([]);
    expect(wrongReads).toEqual([]);
    expect(exitCode).toBe(0);
    expect(proc.output()).toMatch(/"drained":true/);

    // What the in-flight creations were told is true: stored, and only those.
    const acknowledged = [
      'sigterm-seed-0',
      'sigterm-seed-1',
      'sigterm-seed-2',
      'sigterm-seed-3',
      'sigterm-upload-0',
      'sigterm-upload-1',
      ...inFlight.filter((attempt) => attempt.action === 'create').map((attempt) => attempt.groupId),
    ];
    const stored = await admin.query<{ id: string }>(
      'SELECT id FROM ota_groups WHERE provision_secret_envelope IS NOT NULL',
    );
    expect(stored.rows.map((row) => row.id).sort()).toEqual(acknowledged.sort());
    process.stdout.write(
      `sigterm: ${inFlight.length} requests sent before the signal (all 2xx; ${WORKERS} workers + ${uploads.length} uploads in flight at it), ` +
        `${afterSignal.length + probes.length} after it (${[...afterSignal.map((attempt) => statusOf(attempt.outcome)), ...probes.map(statusOf)].join(', ')}); exit code ${exitCode}\n`,
    );
  }, 90_000);

  test('leak sweep: no secret or key bytes in the process output, tables or responses, except authorized secret reads', async () => {
    const report = await evidence.sweep([{ label: 'sigterm', pool: admin }]);
    expect(describeFindings(report.findings)).toBe('');
    expect(report.counts.logLines).toBeGreaterThan(0);
  }, 30_000);
});
