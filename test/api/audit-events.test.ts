/**
 * The audit log through GET /v1/audit-events (filters and paging), what each action records, that
 * history is append-only, and that a secret read's record is committed before any plaintext leaves:
 * when the audit insert fails for real, the read fails and sends no secret.
 */
import {
  type ApiClient,
  apiFor,
  type AuditEventJson,
  type AuditEventPageJson,
  AUDITOR,
  bodyOf,
  CERT_WORKER,
  expectProblem,
  FLEET_A_WORKER,
  groupPath,
  MANAGEMENT,
  type ProvisionSecretJson,
} from './support/api-client';
import { auditRowsFor } from './support/database';
import { startTestService, TEST_ISSUER, type TestService } from '../support/test-service';

let svc: TestService;
let api: ApiClient;
/** X-Request-Id of each step of the scripted history below. */
const requestIds: Record<string, string> = {};

const eventsQuery = async (query: string): Promise<AuditEventPageJson> => {
  const res = await api.get(`/v1/audit-events?${query}`, { as: AUDITOR });
  expect(res.status).toBe(200);
  return bodyOf<AuditEventPageJson>(res);
};

beforeAll(async () => {
  svc = await startTestService();
  api = apiFor(svc);
  // A scripted history of group audit.a, with audit.b interleaved as noise.
  const steps: Array<[string, () => Promise<import('supertest').Response>]> = [
    [
      'create',
      () => api.post('/v1/device-groups', { id: 'audit.a', provisionSecret: 'ps-audit-a1' }, { as: MANAGEMENT }),
    ],
    [
      'createB',
      () => api.post('/v1/device-groups', { id: 'audit.b', provisionSecret: 'ps-audit-b1' }, { as: MANAGEMENT }),
    ],
    ['read', () => api.get(groupPath('audit.a', '/provision-secret'), { as: CERT_WORKER })],
    ['readByPool', () => api.get(groupPath('audit.a', '/provision-secret'), { as: 'worker-pool-1' })],
    ['readBByPool', () => api.get(groupPath('audit.b', '/provision-secret'), { as: 'worker-pool-1' })],
    [
      'rotate',
      () => api.put(groupPath('audit.a', '/provision-secret'), { provisionSecret: 'ps-audit-a2' }, { as: MANAGEMENT }),
    ],
    ['readAfterRotate', () => api.get(groupPath('audit.a', '/provision-secret'), { as: CERT_WORKER })],
    ['denied', () => api.get(groupPath('audit.a', '/provision-secret'), { as: FLEET_A_WORKER })],
    ['delete', () => api.delete(groupPath('audit.a'), { as: MANAGEMENT })],
  ];
  for (const [name, step] of steps) {
    const res = await step();
    expect(res.status).toBeLessThan(500);
    requestIds[name] = res.headers['x-request-id'] as string;
  }
});
afterAll(() => svc.stop());

describe('what is recorded', () => {
  test('create, reads, rotation, denial and deletion of a group, in order, with actor, version, KEK and outcome', async () => {
    const { items, nextCursor } = await eventsQuery('groupId=audit.a');
    expect(nextCursor).toBeNull();
    const kekId = items[0]?.kekId;
    expect(kekId).toMatch(/^kek_[0-9a-f]{32}$/);
    expect(
      items.map(({ requestId, actorSubject, action, secretVersion, kekId: kek, outcome, reason }) => ({
        requestId,
        actorSubject,
        action,
        secretVersion,
        kekId: kek,
        outcome,
        reason,
      })),
    ).toEqual([
      {
        requestId: requestIds.create,
        actorSubject: MANAGEMENT,
        action: 'device-group.create',
        secretVersion: 1,
        kekId,
        outcome: 'ok',
        reason: null,
      },
      {
        requestId: requestIds.read,
        actorSubject: CERT_WORKER,
        action: 'provision-secret.read',
        secretVersion: 1,
        kekId,
        outcome: 'ok',
        reason: null,
      },
      {
        requestId: requestIds.readByPool,
        actorSubject: 'worker-pool-1',
        action: 'provision-secret.read',
        secretVersion: 1,
        kekId,
        outcome: 'ok',
        reason: null,
      },
      {
        requestId: requestIds.rotate,
        actorSubject: MANAGEMENT,
        action: 'provision-secret.rotate',
        secretVersion: 2,
        kekId,
        outcome: 'ok',
        reason: null,
      },
      {
        requestId: requestIds.readAfterRotate,
        actorSubject: CERT_WORKER,
        action: 'provision-secret.read',
        secretVersion: 2,
        kekId,
        outcome: 'ok',
        reason: null,
      },
      {
        requestId: requestIds.denied,
        actorSubject: FLEET_A_WORKER,
        action: 'provision-secret.read',
        secretVersion: null,
        kekId: null,
        outcome: 'denied',
        reason: 'missing_permission:provision-secret:read',
      },
      {
        requestId: requestIds.delete,
        actorSubject: MANAGEMENT,
        action: 'device-group.delete',
        secretVersion: 2,
        kekId,
        outcome: 'ok',
        reason: null,
      },
    ]);
    for (const item of items) {
      expect(item.actorIssuer).toBe(TEST_ISSUER);
      expect(item.groupId).toBe('audit.a');
      expect(item.clientAddress).toMatch(/127\.0\.0\.1/);
      expect(Number.isNaN(Date.parse(item.occurredAt))).toBe(false);
    }
  });

  test('the audit table has no column that could hold secret or key material', async () => {
    const columns = await svc.pool.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'audit_events' ORDER BY ordinal_position`,
    );
    expect(columns.rows.map((row) => row.column_name)).toEqual([
      'id',
      'occurred_at',
      'request_id',
      'actor_issuer',
      'actor_subject',
      'action',
      'group_id',
      'secret_version',
      'kek_id',
      'outcome',
      'reason',
      'client_address',
      'occurrences',
      'last_occurred_at',
      // How a secret read was delivered, and to which worker key id: never the key itself.
      'secret_delivery',
      'recipient_kid',
    ]);
  });

  test('history is append-only: UPDATE, DELETE and TRUNCATE are refused even to the table owner', async () => {
    await expect(svc.pool.query(`UPDATE audit_events SET outcome = 'ok' WHERE outcome = 'denied'`)).rejects.toThrow(
      /append-only/,
    );
    await expect(svc.pool.query(`DELETE FROM audit_events`)).rejects.toThrow(/append-only/);
    await expect(svc.pool.query(`TRUNCATE audit_events`)).rejects.toThrow(/append-only/);
  });
});

describe('filters and paging', () => {
  test('actor: only the events of that subject, across groups', async () => {
    const { items } = await eventsQuery('actor=worker-pool-1');
    expect(items.map((item) => [item.requestId, item.groupId])).toEqual([
      [requestIds.readByPool, 'audit.a'],
      [requestIds.readBByPool, 'audit.b'],
    ]);
  });

  test('groupId and actor together', async () => {
    const { items } = await eventsQuery(`groupId=audit.b&actor=${encodeURIComponent('worker-pool-1')}`);
    expect(items.map((item) => item.requestId)).toEqual([requestIds.readBByPool]);
  });

  test('since: events at or after the time, with a Z or a numeric offset', async () => {
    const all = (await eventsQuery('groupId=audit.a')).items;
    const rotation = all.find((item) => item.requestId === requestIds.rotate) as AuditEventJson;
    const fromRotation = all.slice(all.indexOf(rotation)).map((item) => item.id);
    expect(
      (await eventsQuery(`groupId=audit.a&since=${encodeURIComponent(rotation.occurredAt)}`)).items.map(
        (item) => item.id,
      ),
    ).toEqual(fromRotation);
    const shifted = new Date(Date.parse(rotation.occurredAt) + 2 * 3600_000).toISOString().replace('Z', '+02:00');
    expect(
      (await eventsQuery(`groupId=audit.a&since=${encodeURIComponent(shifted)}`)).items.map((item) => item.id),
    ).toEqual(fromRotation);
    expect((await eventsQuery(`since=${encodeURIComponent('2999-01-01T00:00:00Z')}`)).items).toEqual([]);
  });

  test('limit and after walk the whole log in pages without gaps or repeats', async () => {
    const everything = (await eventsQuery('limit=1000')).items.map((item) => item.id);
    const walked: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page: AuditEventPageJson = await eventsQuery(`limit=2${after ? `&after=${after}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(2);
      walked.push(...page.items.map((item) => item.id));
      after = page.nextCursor;
      pages += 1;
    } while (after !== null && pages < 100);
    expect(walked).toEqual(everything);
    expect(pages).toBe(Math.ceil(everything.length / 2));
  });

  test('groupId with limit and after pages the group’s history', async () => {
    const first = await eventsQuery('groupId=audit.a&limit=3');
    expect(first.items).toHaveLength(3);
    const second = await eventsQuery(`groupId=audit.a&limit=3&after=${first.nextCursor}`);
    const third = await eventsQuery(`groupId=audit.a&limit=3&after=${second.nextCursor}`);
    expect(third.nextCursor).toBeNull();
    expect([...first.items, ...second.items, ...third.items].map((item) => item.requestId)).toEqual(
      (await eventsQuery('groupId=audit.a')).items.map((item) => item.requestId),
    );
  });
});

describe('the audit record comes before the plaintext', () => {
  const BLOCK_READS = `ALTER TABLE audit_events ADD CONSTRAINT test_block_secret_reads CHECK (action <> 'provision-secret.read') NOT VALID`;
  const BLOCK_ALL = `ALTER TABLE audit_events ADD CONSTRAINT test_block_all CHECK (false) NOT VALID`;

  beforeAll(async () => {
    await api.post(
      '/v1/device-groups',
      { id: 'audit.guarded', provisionSecret: 'ps-audit-guarded' },
      { as: MANAGEMENT },
    );
  });
  afterEach(async () => {
    await svc.pool.query(`ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS test_block_secret_reads`);
    await svc.pool.query(`ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS test_block_all`);
  });

  test('a successful read has its ok record committed under the same request id', async () => {
    const res = await api.get(groupPath('audit.guarded', '/provision-secret'), { as: CERT_WORKER });
    expect(res.status).toBe(200);
    expect(await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] })).toEqual([
      expect.objectContaining({ action: 'provision-secret.read', outcome: 'ok' }),
    ]);
  });

  test('when the read record cannot be written, the read fails with a 5xx and no secret', async () => {
    await svc.pool.query(BLOCK_READS);
    const res = await api.get(groupPath('audit.guarded', '/provision-secret'), { as: CERT_WORKER });
    expect(res.status).toBeGreaterThanOrEqual(500);
    expectProblem(res, res.status);
    expect(res.text).not.toContain('ps-audit-guarded');
    expect(svc.logs()).not.toContain('ps-audit-guarded');
    expect(await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] })).toEqual([]);
  });

  test('when no audit record can be written at all, the read fails with a 5xx and no secret', async () => {
    await svc.pool.query(BLOCK_ALL);
    const res = await api.get(groupPath('audit.guarded', '/provision-secret'), { as: CERT_WORKER });
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(res.text).not.toContain('ps-audit-guarded');
  });

  test('a denial that cannot be audited is still refused (5xx, never let through)', async () => {
    await svc.pool.query(BLOCK_ALL);
    const res = await api.get(groupPath('audit.guarded', '/provision-secret'), { as: FLEET_A_WORKER });
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(res.text).not.toContain('ps-audit-guarded');
  });

  test('once the audit log accepts writes again, reads work again', async () => {
    const res = await api.get(groupPath('audit.guarded', '/provision-secret'), { as: CERT_WORKER });
    expect(res.status).toBe(200);
    expect(bodyOf<ProvisionSecretJson>(res).provisionSecret).toBe('ps-audit-guarded');
  });
});

describe('a change and its audit record commit together', () => {
  const BLOCK_CHANGES = `ALTER TABLE audit_events ADD CONSTRAINT test_block_changes CHECK (action NOT IN ('device-group.create', 'provision-secret.rotate', 'device-group.delete')) NOT VALID`;
  const snapshot = async () =>
    (
      await svc.pool.query<Record<string, unknown>>(
        'SELECT id, name, secret_version, kek_id, provision_secret_envelope FROM ota_groups ORDER BY id',
      )
    ).rows;

  beforeAll(async () => {
    await api.post('/v1/device-groups', { id: 'audit.atomic', provisionSecret: 'ps-audit-atomic' }, { as: MANAGEMENT });
    await svc.pool.query(BLOCK_CHANGES);
  });
  afterAll(() => svc.pool.query('ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS test_block_changes'));

  test.each([
    [
      'create',
      () =>
        api.post('/v1/device-groups', { id: 'audit.atomic-new', provisionSecret: 'ps-audit-new' }, { as: MANAGEMENT }),
    ],
    [
      'rotate',
      () =>
        api.put(
          groupPath('audit.atomic', '/provision-secret'),
          { provisionSecret: 'ps-audit-atomic-2' },
          { as: MANAGEMENT },
        ),
    ],
    ['delete', () => api.delete(groupPath('audit.atomic'), { as: MANAGEMENT })],
  ])('when its audit record cannot be written, a %s fails and changes nothing', async (_name, call) => {
    const before = await snapshot();
    const res = await call();
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(await snapshot()).toEqual(before);
  });
});
