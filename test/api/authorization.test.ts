/**
 * Who may call what: every permission and every group restriction of the policy, denied with a
 * generic 403, audited as `denied`, counted in provsec_auth_failures_total{reason="forbidden"},
 * with nothing stored or changed and no data in the body.
 */
import {
  type ApiClient,
  apiFor,
  AUDITOR,
  bodyOf,
  CERT_WORKER,
  type DeviceGroupPageJson,
  expectProblem,
  FLEET_A_WORKER,
  groupPath,
  KEY_ADMIN,
  MANAGEMENT,
  PROBLEM_TYPE_BASE,
  type ProvisionSecretJson,
} from './support/api-client';
import { auditRowsFor, snapshotGroups } from './support/database';
import { counterValue } from './support/metrics';
import { startTestService, TEST_ISSUER, TEST_POLICY, type TestService } from '../support/test-service';

const FLEET_A_READER = 'fleet-a-reader';
const ISSUER_BOUND = 'issuer-bound';

/** TEST_POLICY plus a group-restricted reader and a rule that only holds for another issuer. */
const POLICY = {
  rules: [
    ...TEST_POLICY.rules,
    { subject: FLEET_A_READER, permissions: ['device-groups:read'], groups: ['fleet-a.*'] },
    {
      subject: ISSUER_BOUND,
      issuer: 'https://another-issuer.test',
      permissions: ['provision-secret:read', 'device-groups:read', 'device-groups:write', 'audit:read', 'keys:admin'],
    },
  ],
};

const SECRET_A = 'ps-authz-fleet-a';
const SECRET_B = 'ps-authz-fleet-b';

let svc: TestService;
let api: ApiClient;

beforeAll(async () => {
  svc = await startTestService({ policy: POLICY });
  api = apiFor(svc);
  for (const [id, provisionSecret] of [
    ['fleet-a.1', SECRET_A],
    ['fleet-b.1', SECRET_B],
    ['fleet-a', 'ps-authz-bare'],
    ['fleet-ab.1', 'ps-authz-ab'],
    ['fleet-a.2', 'ps-authz-fleet-a-2'],
    // Sort before every fleet-a group: a restricted listing must scan past them.
    ...['fleet-0.1', 'fleet-0.2', 'fleet-0.3', 'fleet-0.4'].map((id) => [id, 'ps-authz-zero']),
  ]) {
    expect((await api.post('/v1/device-groups', { id, provisionSecret })).status).toBe(201);
  }
});
afterAll(() => svc.stop());

type Method = 'get' | 'post' | 'put' | 'delete';

interface Call {
  readonly method: Method;
  readonly path: string;
  readonly body?: unknown;
  readonly action: string;
  readonly permission: string;
  readonly groupId: string | null;
}

const calls = {
  create: {
    method: 'post',
    path: '/v1/device-groups',
    body: { id: 'fleet-a.new', provisionSecret: 'ps-authz-new' },
    action: 'device-group.create',
    permission: 'device-groups:write',
    groupId: 'fleet-a.new',
  },
  rotate: {
    method: 'put',
    path: groupPath('fleet-a.1', '/provision-secret'),
    body: { provisionSecret: 'ps-authz-rotated' },
    action: 'provision-secret.rotate',
    permission: 'device-groups:write',
    groupId: 'fleet-a.1',
  },
  delete: {
    method: 'delete',
    path: groupPath('fleet-a.1'),
    action: 'device-group.delete',
    permission: 'device-groups:write',
    groupId: 'fleet-a.1',
  },
  list: {
    method: 'get',
    path: '/v1/device-groups',
    action: 'device-group.list',
    permission: 'device-groups:read',
    groupId: null,
  },
  metadata: {
    method: 'get',
    path: groupPath('fleet-a.1'),
    action: 'device-group.read',
    permission: 'device-groups:read',
    groupId: 'fleet-a.1',
  },
  readSecret: {
    method: 'get',
    path: groupPath('fleet-a.1', '/provision-secret'),
    action: 'provision-secret.read',
    permission: 'provision-secret:read',
    groupId: 'fleet-a.1',
  },
  readSecretB: {
    method: 'get',
    path: groupPath('fleet-b.1', '/provision-secret'),
    action: 'provision-secret.read',
    permission: 'provision-secret:read',
    groupId: 'fleet-b.1',
  },
  audit: { method: 'get', path: '/v1/audit-events', action: 'audit.read', permission: 'audit:read', groupId: null },
  keys: { method: 'get', path: '/v1/keys', action: 'keys.read', permission: 'keys:admin', groupId: null },
} satisfies Record<string, Call>;

function send(call: Call, subject: string) {
  if (call.method === 'post') return api.post(call.path, call.body, { as: subject });
  if (call.method === 'put') return api.put(call.path, call.body, { as: subject });
  return api[call.method](call.path, { as: subject });
}

/** Makes the call as `subject` and proves the whole refusal: 403, generic body, audit row, metric, nothing changed. */
async function expectDenied(subject: string, call: Call): Promise<void> {
  const forbiddenBefore = await counterValue(svc, 'provsec_auth_failures_total', { reason: 'forbidden' });
  // Reads change nothing by construction; snapshot around the writes.
  const groupsBefore = call.method === 'get' ? undefined : await snapshotGroups(svc.pool);
  const res = await send(call, subject);
  expectProblem(res, 403, 'forbidden');
  const { requestId, ...rest } = JSON.parse(res.text) as Record<string, unknown>;
  expect(rest).toEqual({
    type: `${PROBLEM_TYPE_BASE}forbidden`,
    title: 'Forbidden',
    status: 403,
    detail: 'The token does not grant this action on this resource.',
  });
  expect(res.text).not.toMatch(/ps-authz|kek_/);
  expect(requestId).toBe(res.headers['x-request-id']);
  expect(await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] })).toEqual([
    expect.objectContaining({
      action: call.action,
      outcome: 'denied',
      reason: `missing_permission:${call.permission}`,
      group_id: call.groupId,
      actor_issuer: TEST_ISSUER,
      actor_subject: subject,
      secret_version: null,
      kek_id: null,
    }),
  ]);
  expect(await counterValue(svc, 'provsec_auth_failures_total', { reason: 'forbidden' })).toBe(forbiddenBefore + 1);
  if (groupsBefore !== undefined) expect(await snapshotGroups(svc.pool)).toEqual(groupsBefore);
}

describe('each permission missing is a 403', () => {
  test.each([
    ['device-groups:write (create)', AUDITOR, calls.create],
    ['device-groups:write (rotate)', AUDITOR, calls.rotate],
    ['device-groups:write (delete)', AUDITOR, calls.delete],
    ['device-groups:write (create, as a worker that may read secrets)', CERT_WORKER, calls.create],
    ['device-groups:write (delete, as a worker that may read secrets)', CERT_WORKER, calls.delete],
    ['device-groups:read (list)', AUDITOR, calls.list],
    ['device-groups:read (metadata)', AUDITOR, calls.metadata],
    ['provision-secret:read', MANAGEMENT, calls.readSecret],
    ['provision-secret:read (as the key admin)', KEY_ADMIN, calls.readSecret],
    ['audit:read', MANAGEMENT, calls.audit],
    ['keys:admin', MANAGEMENT, calls.keys],
    ['keys:admin (as a worker)', CERT_WORKER, calls.keys],
  ] as const)('%s: %s is refused', async (_permission, subject, call) => {
    await expectDenied(subject, call);
  });
});

describe('group restrictions', () => {
  test('fleet-a-worker reads a secret inside fleet-a.*', async () => {
    const res = await api.get(groupPath('fleet-a.1', '/provision-secret'), { as: FLEET_A_WORKER });
    expect(res.status).toBe(200);
    expect(bodyOf<ProvisionSecretJson>(res).provisionSecret).toBe(SECRET_A);
  });

  test.each([
    ['fleet-b.1', 'another fleet'],
    ['fleet-a', 'the bare prefix (the glob needs the dot)'],
    ['fleet-ab.1', 'a longer name sharing the prefix'],
  ])('fleet-a-worker may not read %s (%s)', async (groupId) => {
    await expectDenied(FLEET_A_WORKER, { ...calls.readSecret, path: groupPath(groupId, '/provision-secret'), groupId });
  });

  test('fleet-a-worker holds no device-groups:read even inside its groups', async () => {
    await expectDenied(FLEET_A_WORKER, calls.metadata);
  });

  test('a group the caller may not see is 403 whether or not it exists (no existence oracle)', async () => {
    await expectDenied(FLEET_A_WORKER, {
      ...calls.readSecret,
      path: groupPath('fleet-b.does-not-exist', '/provision-secret'),
      groupId: 'fleet-b.does-not-exist',
    });
  });

  test('a group-restricted reader gets metadata inside its groups, 403 outside', async () => {
    expect((await api.get(groupPath('fleet-a.1'), { as: FLEET_A_READER })).status).toBe(200);
    await expectDenied(FLEET_A_READER, { ...calls.metadata, path: groupPath('fleet-b.1'), groupId: 'fleet-b.1' });
  });

  test('a group-restricted reader lists only its groups, and no cursor names a group it may not see', async () => {
    const pages: string[][] = [];
    const cursors: string[] = [];
    let after: string | null = '';
    for (let count = 0; after !== null && count < 20; count += 1) {
      const res = await api.get(`/v1/device-groups?limit=1${after ? `&after=${encodeURIComponent(after)}` : ''}`, {
        as: FLEET_A_READER,
      });
      expect(res.status).toBe(200);
      pages.push(bodyOf<DeviceGroupPageJson>(res).items.map((item) => item.id));
      after = bodyOf<DeviceGroupPageJson>(res).nextCursor;
      if (after !== null) cursors.push(after);
    }
    expect(pages).toEqual([['fleet-a.1'], ['fleet-a.2']]);
    expect(cursors).toEqual(['fleet-a.1']);
    const whole = await api.get('/v1/device-groups', { as: FLEET_A_READER });
    expect(whole.body).toMatchObject({ items: [{ id: 'fleet-a.1' }, { id: 'fleet-a.2' }], nextCursor: null });
  });

  test('an unrestricted reader still sees every group', async () => {
    const res = await api.get('/v1/device-groups', { as: CERT_WORKER });
    expect(bodyOf<DeviceGroupPageJson>(res).items.map((item) => item.id)).toEqual([
      'fleet-0.1',
      'fleet-0.2',
      'fleet-0.3',
      'fleet-0.4',
      'fleet-a',
      'fleet-a.1',
      'fleet-a.2',
      'fleet-ab.1',
      'fleet-b.1',
    ]);
  });
});

describe('subject matching', () => {
  test('a subject under the worker-pool-* prefix reads any group', async () => {
    const res = await api.get(groupPath('fleet-b.1', '/provision-secret'), { as: 'worker-pool-7' });
    expect(res.status).toBe(200);
    expect(bodyOf<ProvisionSecretJson>(res).provisionSecret).toBe(SECRET_B);
  });

  test.each([
    ['worker-pool', 'the prefix without its last character'],
    ['Worker-pool-7', 'a different case'],
    ['xworker-pool-7', 'the prefix not at the start'],
  ])('%s (%s) matches no rule: 403', async (subject) => {
    await expectDenied(subject, calls.readSecretB);
  });

  test('a rule bound to another issuer does not apply to a token from ours', async () => {
    await expectDenied(ISSUER_BOUND, calls.readSecret);
  });

  test('an exact subject with a suffix added matches nothing', async () => {
    await expectDenied(`${CERT_WORKER}-evil`, calls.readSecret);
  });
});

describe('a valid token whose subject has no rule at all', () => {
  test.each(Object.entries(calls))('%s is 403', async (_name, call) => {
    await expectDenied('stranger', call);
  });
});
