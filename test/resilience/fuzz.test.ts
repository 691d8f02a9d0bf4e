/**
 * Fuzzing the HTTP API with generated malformed requests (fast-check): broken bodies, ids, query
 * strings, headers, tokens (random, truncated, re-signed with wrong keys, bad claims), methods,
 * media types and content codings, and well-formed writes by identities without permission.
 * Proves: no 5xx and no crash; every refusal from the service is a clean problem+json; no row of
 * ota_groups changes and no existing audit row changes (denials may only append).
 * The run is reproducible: the seed is in the test name (override with PROVSEC_FUZZ_SEED).
 */
import fc from 'fast-check';
import { describeFindings, LeakEvidence } from '../support/leak-sweep';
import { startTestService, type TestService } from '../support/test-service';
import { apiClient, problemDefect, statusOf, type ApiClient, type Outcome } from './support/api-client';
import { malformedRequest, type FuzzTokens, type MalformedRequest } from './support/malformed-requests';
import { refusedTokens } from './support/refused-tokens';

const SEED = Number(process.env.PROVSEC_FUZZ_SEED ?? 20_251_123);
/** Requests sent concurrently per property run (the audit inserts of denials batch up in Postgres). */
const BATCH = 8;
const RUNS = 650;
const READ_LIMIT_PER_MINUTE = 100;

function violation(request: MalformedRequest, outcome: Outcome): string | undefined {
  if (outcome.kind !== 'response') return `no response: ${outcome.code}`;
  const { status } = outcome;
  if (status >= 500) return `status ${status}: ${outcome.body.slice(0, 300)}`;
  if (request.expect === '4xx' && (status < 400 || status > 499)) return `status ${status}, expected a 4xx`;
  if (request.expect === '403' && status !== 403) return `status ${status}, expected 403`;
  // Node's own HTTP parser answers some framing faults (431, 400) before the app sees them; every
  // answer from the app itself carries a request id and must be a clean problem.
  const fromApp = outcome.headers['x-request-id'] !== undefined;
  if (fromApp && status >= 400 && request.method !== 'HEAD') return problemDefect(outcome, status);
  return undefined;
}

describe('fuzzing the API with malformed requests', () => {
  const evidence = new LeakEvidence();
  const existing = new Map<string, string>([
    ['fleet-a.1', 'ps-fuzz-fleet-a-1-6b1f0c8e4d2a9f73c5e81b04a6d9e2f7'],
    ['fleet-b.1', 'ps-fuzz-fleet-b-1-0f4e8a2c6b9d1e3f5a7c9e1b3d5f7a90'],
    ['fuzz-g1', 'ps-fuzz-g1-a83b2f6d0c9e4a17b5d3f8e2c6a0b4d9'],
    ['fuzz:g2', 'ps-fuzz-g2-5c7e9a1b3d5f7092e4c6a8b0d2f4e6a8'],
  ]);
  let svc: TestService;
  let client: ApiClient;

  beforeAll(async () => {
    // A low read limit, so the fuzz also drives the rate limiter's refusal path (with odd ids).
    svc = await startTestService({ env: { SECRET_READ_RATE_LIMIT_PER_MINUTE: String(READ_LIMIT_PER_MINUTE) } });
    client = apiClient(svc.url, { evidence, maxSockets: BATCH });
    evidence.logs('service', () => svc.logs());
    const management = await svc.token('management-api');
    for (const [id, secret] of existing) {
      evidence.storedSecret(id, secret);
      expect(
        statusOf(
          await client.send('POST', '/v1/device-groups', {
            token: management,
            json: { id, name: `group ${id}`, provisionSecret: secret },
          }),
        ),
      ).toBe(201);
    }
    // Some history in the audit log (a rotation, a deletion) for the "no existing row changed" check.
    const rotated = 'ps-fuzz-g1-rotated-1d3f5b7a9c0e2f4a6b8d0c1e3a5f7b9d';
    evidence.storedSecret('fuzz-g1', rotated);
    expect(
      statusOf(
        await client.send('PUT', '/v1/device-groups/fuzz-g1/provision-secret', {
          token: management,
          json: { provisionSecret: rotated },
        }),
      ),
    ).toBe(200);
    existing.set('fuzz-g1', rotated);
    evidence.storedSecret('fuzz-gone', 'ps-fuzz-gone-7e9b1d3f5a7c9e0b2d4f6a8c0e2b4d6f');
    expect(
      statusOf(
        await client.send('POST', '/v1/device-groups', {
          token: management,
          json: { id: 'fuzz-gone', provisionSecret: 'ps-fuzz-gone-7e9b1d3f5a7c9e0b2d4f6a8c0e2b4d6f' },
        }),
      ),
    ).toBe(201);
    expect(statusOf(await client.send('DELETE', '/v1/device-groups/fuzz-gone', { token: management }))).toBe(204);
  }, 30_000);

  afterAll(async () => {
    client?.close();
    await svc?.stop();
  });

  const snapshot = async () => ({
    groups: (
      await svc.pool.query<{ row: string }>('SELECT row_to_json(g)::text AS row FROM ota_groups g ORDER BY id')
    ).rows.map((row) => row.row),
    audit: (
      await svc.pool.query<{ id: string; row: string }>(
        'SELECT id::text, row_to_json(a)::text AS row FROM audit_events a ORDER BY id',
      )
    ).rows,
  });

  test(`${RUNS * BATCH} malformed requests (fast-check seed ${SEED}, ${RUNS} runs of ${BATCH}): no 5xx, clean problems, no row changed`, async () => {
    const tokens: FuzzTokens = {
      management: await svc.token('management-api'),
      worker: await svc.token('system:serviceaccount:provisioning:cert-worker'),
      auditor: await svc.token('auditor'),
      keyAdmin: await svc.token('key-admin'),
      fleetA: await svc.token('fleet-a-worker'),
      nobody: await svc.token('nobody-in-the-policy'),
      refused: await refusedTokens(svc),
    };
    const before = await snapshot();
    const startedAt = Date.now();
    const perDefect = new Map<string, number>();
    const perStatus = new Map<number | string, number>();
    let sent = 0;

    await fc.assert(
      fc.asyncProperty(
        fc.array(malformedRequest({ tokens, existingIds: [...existing.keys()] }), {
          minLength: BATCH,
          maxLength: BATCH,
        }),
        async (batch) => {
          const outcomes = await Promise.all(
            batch.map((request) =>
              client.send(request.method, request.path, {
                headers: request.headers,
                ...(request.body === undefined ? {} : { body: request.body }),
              }),
            ),
          );
          sent += batch.length;
          const violations: string[] = [];
          batch.forEach((request, index) => {
            const outcome = outcomes[index] as Outcome;
            perDefect.set(request.defect, (perDefect.get(request.defect) ?? 0) + 1);
            perStatus.set(statusOf(outcome), (perStatus.get(statusOf(outcome)) ?? 0) + 1);
            const problem = violation(request, outcome);
            if (problem)
              violations.push(`${request.defect}: ${request.method} ${request.path.slice(0, 120)} -> ${problem}`);
          });
          if (violations.length > 0) throw new Error(violations.join('\n'));
        },
      ),
      // No shrinking: the error lists the exact requests at fault, and shrinking 8 at a time is slow.
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    const elapsedMs = Date.now() - startedAt;

    // No row changed; the audit log only grew, and only by refusals and reads.
    const after = await snapshot();
    expect(after.groups).toEqual(before.groups);
    const lastBefore = BigInt(before.audit[before.audit.length - 1]?.id ?? '0');
    expect(after.audit.filter((row) => BigInt(row.id) <= lastBefore)).toEqual(before.audit);
    const appended = after.audit
      .filter((row) => BigInt(row.id) > lastBefore)
      .map((row) => JSON.parse(row.row) as { action: string; outcome: string });
    expect(
      appended.filter(
        (event) =>
          event.outcome === 'ok' &&
          ['device-group.create', 'provision-secret.rotate', 'device-group.delete'].includes(event.action),
      ),
    ).toEqual([]);
    expect(appended.length).toBeGreaterThan(0);

    // No crash: the same instance still serves, and no request reached the unhandled-error path.
    expect(svc.logs()).not.toContain('"msg":"unhandled error"');
    expect(statusOf(await client.send('GET', '/readyz'))).toBe(200);
    // A fresh identity: the fuzzer's worker has used up its read limit.
    const worker = await svc.token('worker-pool-after-fuzz');
    for (const [id, secret] of existing) {
      const read = await client.send('GET', `/v1/device-groups/${id}/provision-secret`, { token: worker });
      expect(
        read.kind === 'response' &&
          read.status === 200 &&
          (JSON.parse(read.body) as { provisionSecret: string }).provisionSecret,
      ).toBe(secret);
    }

    expect(sent).toBeGreaterThanOrEqual(5000);
    process.stdout.write(
      `fuzz: ${sent} requests in ${elapsedMs} ms (seed ${SEED}, ${RUNS} runs x ${BATCH}); by defect ${JSON.stringify(Object.fromEntries(perDefect))}; ` +
        `by status ${JSON.stringify(Object.fromEntries([...perStatus].sort(([a], [b]) => String(a).localeCompare(String(b)))))}; ${appended.length} audit rows appended\n`,
    );
  }, 120_000);

  // Requests the fuzzer found answered with a 500 before the fixes in src/http (kept as fixed cases).
  test.each([
    ['a path id with broken percent-encoding', 'GET', '/v1/device-groups/%ZZ', {}, undefined],
    ['a path id that is not UTF-8 once decoded', 'GET', '/v1/device-groups/%80/provision-secret', {}, undefined],
    ['a path id cut inside a multi-byte sequence', 'DELETE', '/v1/device-groups/%E0%A4%A', {}, undefined],
    [
      'a body that claims gzip but is not',
      'POST',
      '/v1/device-groups',
      { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      '{"id":"fuzz-new-gz","provisionSecret":"x"}',
    ],
    [
      'a body that claims deflate but is not',
      'POST',
      '/v1/device-groups',
      { 'content-type': 'application/json', 'content-encoding': 'deflate' },
      '{"id":"fuzz-new-df","provisionSecret":"x"}',
    ],
    [
      'a body that claims br but is not',
      'PUT',
      '/v1/device-groups/fleet-b.1/provision-secret',
      { 'content-type': 'application/json', 'content-encoding': 'br' },
      '{"provisionSecret":"x"}',
    ],
    [
      'a group name with a NUL character',
      'POST',
      '/v1/device-groups',
      { 'content-type': 'application/json' },
      '{"id":"fuzz-new-nul","name":"a\\u0000b","provisionSecret":"x"}',
    ],
    ['an audit actor filter with a NUL character', 'GET', '/v1/audit-events?actor=%00', {}, undefined],
  ] as const)('fixed: %s is a 400 problem, not a 500', async (_name, method, path, headers, body) => {
    const token = await svc.token(path.startsWith('/v1/audit-events') ? 'auditor' : 'management-api');
    const outcome = await client.send(method, path, { token, headers, ...(body === undefined ? {} : { body }) });
    expect(problemDefect(outcome, 400)).toBeUndefined();
  });

  test('fixed: a rate-limited secret read of a path id with a NUL is a 429 problem, not a 500', async () => {
    const token = await svc.token('worker-pool-nul');
    let last: Outcome | undefined;
    for (let attempt = 0; attempt <= READ_LIMIT_PER_MINUTE; attempt += 1)
      last = await client.send('GET', '/v1/device-groups/%00/provision-secret', { token });
    expect(problemDefect(last as Outcome, 429)).toBeUndefined();
  });

  test('leak sweep: no secret bytes in the logs, tables or responses, except authorized secret reads', async () => {
    const report = await evidence.sweep([{ label: 'fuzz', pool: svc.pool }]);
    expect(describeFindings(report.findings)).toBe('');
    expect(report.counts.responses).toBeGreaterThanOrEqual(5000);
  }, 30_000);
});
