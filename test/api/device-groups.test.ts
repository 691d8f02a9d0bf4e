/**
 * /v1/device-groups: create (201, retry 200, conflict 409), metadata, paged listing, deletion.
 * Metadata responses never carry the secret.
 */
// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import {
  type ApiClient,
  apiFor,
  bodyOf,
  CERT_WORKER,
  type DeviceGroupPageJson,
  expectProblem,
  groupPath,
} from './support/api-client';
import { auditRowsFor, snapshotGroups } from './support/database';
import { startTestService, type TestService } from '../support/test-service';

let svc: TestService;
let api: ApiClient;

beforeAll(async () => {
  svc = await startTestService();
  api = apiFor(svc);
});
afterAll(() => svc.stop());

const METADATA_KEYS = ['createdAt', 'id', 'kekId', 'name', 'secretVersion', 'updatedAt'];

describe('POST /v1/device-groups', () => {
  test('creates a group: 201, Location of the new group, metadata without the secret', async () => {
    const res = await api.post('/v1/device-groups', {
      id: 'create.1',
      name: 'Fleet one',
      provisionSecret: 'ps-create-1',
    });
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe('/v1/device-groups/create.1');
    expect(Object.keys(res.body as object).sort()).toEqual(METADATA_KEYS);
    expect(res.body).toMatchObject({
      id: 'create.1',
      name: 'Fleet one',
      secretVersion: 1,
      kekId: expect.stringMatching(/^kek_[0-9a-f]{32}$/),
    });
    expect(res.text).not.toContain('ps-create-1');
  });

  test('name is optional and may be null', async () => {
    expect((await api.post('/v1/device-groups', { id: 'create.no-name', provisionSecret: 'x' })).body).toMatchObject({
      name: null,
    });
    expect(
      (await api.post('/v1/device-groups', { id: 'create.null-name', name: null, provisionSecret: 'x' })).body,
    ).toMatchObject({ name: null });
  });

  test('an id using every allowed character class works, and the Location header leads to it', async () => {
    const res = await api.post('/v1/device-groups', { id: 'ns:fleet_A-1.b', provisionSecret: 'ps' });
    expect(res.status).toBe(201);
    expect((await api.get(res.headers.location as string)).body).toMatchObject({ id: 'ns:fleet_A-1.b' });
  });

  test('the same id with the same secret (a client retry) is 200 with the existing metadata, unchanged', async () => {
    const first = await api.post('/v1/device-groups', {
      id: 'create.retry',
      name: 'first',
      provisionSecret: 'ps-retry',
    });
    const before = await snapshotGroups(svc.pool);
    const retry = await api.post('/v1/device-groups', {
      id: 'create.retry',
      name: 'first',
      provisionSecret: 'ps-retry',
    });
    expect(retry.status).toBe(200);
    expect(retry.headers.location).toBeUndefined();
    expect(retry.body).toEqual(first.body);
    expect(await snapshotGroups(svc.pool)).toEqual(before);
    const audit = await auditRowsFor(svc.pool, { request_id: retry.headers['x-request-id'] });
    expect(audit).toEqual([
      expect.objectContaining({
        action: 'device-group.create',
        outcome: 'ok',
        reason: 'idempotent_retry',
        group_id: 'create.retry',
      }),
    ]);
  });

  test('the same id with a different secret is 409 and the stored group stays as it was', async () => {
    await api.post('/v1/device-groups', { id: 'create.conflict', provisionSecret: 'ps-original' });
    const before = await snapshotGroups(svc.pool);
    const res = await api.post('/v1/device-groups', { id: 'create.conflict', provisionSecret: 'ps-different' });
    expectProblem(res, 409, 'conflict');
    expect(res.text).not.toMatch(/ps-original|ps-different/);
    expect(await snapshotGroups(svc.pool)).toEqual(before);
    const read = await api.get(groupPath('create.conflict', '/provision-secret'), { as: CERT_WORKER });
    expect(read.body).toMatchObject({ provisionSecret: 'ps-original' });
    const audit = await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] });
    expect(audit).toEqual([
      expect.objectContaining({ action: 'device-group.create', outcome: 'denied', reason: 'id_conflict' }),
    ]);
  });

  test('a secret that differs only in length or by a trailing byte is still a conflict', async () => {
    await api.post('/v1/device-groups', { id: 'create.prefix', provisionSecret: 'abc' });
    expect((await api.post('/v1/device-groups', { id: 'create.prefix', provisionSecret: 'abcd' })).status).toBe(409);
    expect((await api.post('/v1/device-groups', { id: 'create.prefix', provisionSecret: 'ab' })).status).toBe(409);
    expect((await api.post('/v1/device-groups', { id: 'create.prefix', provisionSecret: 'abC' })).status).toBe(409);
  });

  test('concurrent creations of one id with one secret: exactly one 201, the rest 200, one row', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        api.post('/v1/device-groups', { id: 'create.race-same', provisionSecret: 'ps-race' }),
      ),
    );
    expect(results.map((res) => res.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    const rows = await svc.pool.query(`SELECT secret_version FROM ota_groups WHERE id = 'create.race-same'`);
    expect(rows.rows).toEqual([{ secret_version: 1 }]);
  });

  test('concurrent creations of one id with different secrets: one 201, the others 409, the winner’s secret stored', async () => {
    const secrets = Array.from({ length: 6 }, (_, index) => `ps-race-${index}`);
    const results = await Promise.all(
      secrets.map((provisionSecret) => api.post('/v1/device-groups', { id: 'create.race-diff', provisionSecret })),
    );
    expect(results.map((res) => res.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    const winner = secrets[results.findIndex((res) => res.status === 201)];
    expect((await api.get(groupPath('create.race-diff', '/provision-secret'), { as: CERT_WORKER })).body).toMatchObject(
      { provisionSecret: winner },
    );
  });
});

describe('GET /v1/device-groups/{id}', () => {
  test('returns the metadata only', async () => {
    const created = await api.post('/v1/device-groups', { id: 'get.1', name: 'Get me', provisionSecret: 'ps-get-1' });
    const res = await api.get(groupPath('get.1'));
    expect(res.status).toBe(200);
    expect(res.body).toEqual(created.body);
    expect(res.text).not.toContain('ps-get-1');
  });

  test('an unknown id is 404', async () => {
    expectProblem(await api.get(groupPath('get.nobody')), 404, 'not-found');
  });

  test('a row of ota_groups without a stored secret (pre-provsec) is invisible: 404', async () => {
    await svc.pool.query(`INSERT INTO ota_groups (id, name) VALUES ('legacy.1', 'legacy')`);
    expectProblem(await api.get(groupPath('legacy.1')), 404);
    expect(
      bodyOf<DeviceGroupPageJson>(await api.get('/v1/device-groups?limit=1000')).items.map((item) => item.id),
    ).not.toContain('legacy.1');
  });

  test('creating over a pre-provsec row adopts it: 201, secret stored, version 1', async () => {
    await svc.pool.query(`INSERT INTO ota_groups (id, name) VALUES ('legacy.adopt', 'kept name')`);
    const res = await api.post('/v1/device-groups', { id: 'legacy.adopt', provisionSecret: 'ps-adopted' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: 'legacy.adopt', name: 'kept name', secretVersion: 1 });
  });
});

describe('GET /v1/device-groups (paging)', () => {
  const ids = Array.from({ length: 7 }, (_, index) => `page.${String(index).padStart(2, '0')}`);
  beforeAll(async () => {
    for (const id of ids) await api.post('/v1/device-groups', { id, provisionSecret: `ps-${id}` });
  });

  test('walks every group in id order with limit and the after cursor, then nextCursor is null', async () => {
    // Nothing else in this database sorts after "page.", so the walk ends with these groups.
    const pages: string[][] = [];
    let after: string | null = 'page.';
    while (after !== null) {
      const res = await api.get(`/v1/device-groups?limit=3&after=${encodeURIComponent(after)}`);
      expect(res.status).toBe(200);
      pages.push(bodyOf<DeviceGroupPageJson>(res).items.map((item) => item.id));
      after = bodyOf<DeviceGroupPageJson>(res).nextCursor;
    }
    expect(pages).toEqual([ids.slice(0, 3), ids.slice(3, 6), ids.slice(6)]);
  });

  test('a page exactly filled by the last groups has nextCursor null: no empty page to fetch', async () => {
    const last = await api.get(`/v1/device-groups?limit=2&after=${encodeURIComponent('page.04')}`);
    expect(last.body).toMatchObject({ items: [{ id: 'page.05' }, { id: 'page.06' }], nextCursor: null });
    const notLast = await api.get(`/v1/device-groups?limit=2&after=${encodeURIComponent('page.03')}`);
    expect(notLast.body).toMatchObject({ items: [{ id: 'page.04' }, { id: 'page.05' }], nextCursor: 'page.05' });
  });

  test('without limit the page holds up to 100 groups; no item carries a secret', async () => {
    const res = await api.get('/v1/device-groups');
    expect(res.status).toBe(200);
    expect(bodyOf<DeviceGroupPageJson>(res).items.length).toBeGreaterThanOrEqual(ids.length);
    for (const item of bodyOf<DeviceGroupPageJson>(res).items) expect(Object.keys(item).sort()).toEqual(METADATA_KEYS);
    for (const id of ids) expect(res.text).not.toContain(`ps-${id}`);
  });
});

describe('DELETE /v1/device-groups/{id}', () => {
  test('204, then the group is gone: row deleted, metadata, secret and delete all 404', async () => {
    await api.post('/v1/device-groups', { id: 'delete.1', provisionSecret: 'ps-delete-1' });
    const res = await api.delete(groupPath('delete.1'));
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect((await svc.pool.query(`SELECT 1 FROM ota_groups WHERE id = 'delete.1'`)).rowCount).toBe(0);
    expectProblem(await api.get(groupPath('delete.1')), 404);
    expectProblem(await api.get(groupPath('delete.1', '/provision-secret'), { as: CERT_WORKER }), 404);
    expectProblem(await api.delete(groupPath('delete.1')), 404);
    const audit = await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] });
    expect(audit).toEqual([
      expect.objectContaining({
        action: 'device-group.delete',
        outcome: 'ok',
        group_id: 'delete.1',
        secret_version: 1,
      }),
    ]);
  });

  test('after deletion the id can be created again with a new secret', async () => {
    await api.post('/v1/device-groups', { id: 'delete.reuse', provisionSecret: 'old' });
    await api.delete(groupPath('delete.reuse'));
    const res = await api.post('/v1/device-groups', { id: 'delete.reuse', provisionSecret: 'new' });
    expect(res.status).toBe(201);
    expect((await api.get(groupPath('delete.reuse', '/provision-secret'), { as: CERT_WORKER })).body).toMatchObject({
      provisionSecret: 'new',
      secretVersion: 1,
    });
  });
});

describe('methods a path does not support', () => {
  test.each([
    ['patch', '/v1/device-groups', 'GET, POST'],
    ['patch', '/v1/device-groups/some.group', 'GET, DELETE'],
    ['post', '/v1/device-groups/some.group/provision-secret', 'GET, PUT'],
  ] as const)('%s %s is 405 with Allow: %s', async (method, path, allow) => {
    const res = await api.send(method, path, (test) => test);
    expectProblem(res, 405, 'method-not-allowed');
    expect(res.headers.allow).toBe(allow);
  });
});
