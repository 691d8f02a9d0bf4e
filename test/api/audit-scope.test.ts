/**
 * `audit:read` is group-scoped like every other permission: a rule with `groups` sees only those
 * groups' events (filtered in SQL, so pages and cursors hold only visible events), a `groupId`
 * outside them is a 403, and events tied to no group (refused tokens) need audit:read on all groups.
 */
import {
  type ApiClient,
  apiFor,
  type AuditEventPageJson,
  AUDITOR,
  bodyOf,
  expectProblem,
  MANAGEMENT,
} from './support/api-client';
import { auditRowsFor } from './support/database';
import { startTestService, TEST_POLICY, type TestService } from '../support/test-service';

const FLEET_A_AUDITOR = 'fleet-a-auditor';
const STAR_AUDITOR = 'star-auditor';

interface EventJson {
  id: string;
  groupId: string | null;
  action: string;
  outcome: string;
}

let svc: TestService;
let api: ApiClient;

beforeAll(async () => {
  svc = await startTestService({
    policy: {
      rules: [
        ...TEST_POLICY.rules,
        { subject: FLEET_A_AUDITOR, permissions: ['audit:read'], groups: ['fleet-a*'] },
        { subject: STAR_AUDITOR, permissions: ['audit:read'], groups: ['*'] },
      ],
    },
  });
  api = apiFor(svc);
  for (const id of ['fleet-a.1', 'fleet-b.1', 'fleet-a.2', 'fleet-ab'])
    expect((await api.post('/v1/device-groups', { id, provisionSecret: `ps-${id}` }, { as: MANAGEMENT })).status).toBe(
      201,
    );
  // An event tied to no group: a refused token.
  expect((await api.get('/v1/device-groups', { token: 'not-a-token' })).status).toBe(401);
});
afterAll(() => svc.stop());

async function allEvents(as: string, query = ''): Promise<EventJson[]> {
  const items: EventJson[] = [];
  let after: string | null = null;
  do {
    const res = await api.get(`/v1/audit-events?limit=2${query}${after === null ? '' : `&after=${after}`}`, { as });
    expect(res.status).toBe(200);
    const page = bodyOf<AuditEventPageJson>(res);
    items.push(...page.items);
    after = page.nextCursor;
  } while (after !== null);
  return items;
}

test('a caller limited to fleet-a* sees only those groups’ events, page by page, and no event without a group', async () => {
  const events = await allEvents(FLEET_A_AUDITOR);
  expect(events.map((event) => event.groupId)).toEqual(['fleet-a.1', 'fleet-a.2', 'fleet-ab']);
  expect((await allEvents(AUDITOR)).map((event) => event.groupId)).toEqual([
    'fleet-a.1',
    'fleet-b.1',
    'fleet-a.2',
    'fleet-ab',
    null,
  ]);
});

test('its groupId filter works inside its groups', async () => {
  expect((await allEvents(FLEET_A_AUDITOR, '&groupId=fleet-a.2')).map((event) => event.groupId)).toEqual(['fleet-a.2']);
});

test('a groupId outside its groups is a 403, audited as a denied audit.read', async () => {
  const res = await api.get('/v1/audit-events?groupId=fleet-b.1', { as: FLEET_A_AUDITOR });
  expectProblem(res, 403, 'forbidden');
  expect(await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] })).toEqual([
    expect.objectContaining({
      action: 'audit.read',
      group_id: 'fleet-b.1',
      outcome: 'denied',
      actor_subject: FLEET_A_AUDITOR,
    }),
  ]);
});

test('the actor filter cannot widen the scope', async () => {
  const events = await allEvents(FLEET_A_AUDITOR, `&actor=${MANAGEMENT}`);
  expect(events.map((event) => event.groupId)).toEqual(['fleet-a.1', 'fleet-a.2', 'fleet-ab']);
});

test('events with no group are visible to a rule whose groups cover everything ("*"), as to one without groups', async () => {
  expect((await allEvents(STAR_AUDITOR)).map((event) => event.groupId)).toEqual(
    (await allEvents(AUDITOR)).map((event) => event.groupId),
  );
  expect((await allEvents(STAR_AUDITOR)).filter((event) => event.groupId === null)).toHaveLength(1);
});
