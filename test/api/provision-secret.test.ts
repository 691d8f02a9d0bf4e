/**
 * GET /v1/device-groups/{id}/provision-secret (the only response with a secret) and
 * PUT .../provision-secret (rotation: secretVersion + 1, fresh data key, the old secret gone).
 */
// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import {
  type ApiClient,
  apiFor,
  bodyOf,
  CERT_WORKER,
  type DeviceGroupJson,
  expectProblem,
  groupPath,
  type ProvisionSecretJson,
} from './support/api-client';
import { auditRowsFor } from './support/database';
import { counterValue } from './support/metrics';
import { startTestService, TEST_ISSUER, type TestService } from '../support/test-service';

let svc: TestService;
let api: ApiClient;

beforeAll(async () => {
  svc = await startTestService();
  api = apiFor(svc);
});
afterAll(() => svc.stop());

const readSecret = (id: string) => api.get(groupPath(id, '/provision-secret'), { as: CERT_WORKER });

interface StoredEnvelopeRow {
  envelope: string;
  kek_id: string;
  secret_version: number;
}

async function envelopeOf(id: string): Promise<StoredEnvelopeRow> {
  const result = await svc.pool.query<StoredEnvelopeRow>(
    `SELECT encode(provision_secret_envelope, 'hex') AS envelope, kek_id, secret_version FROM ota_groups WHERE id = $1`,
    [id],
  );
  expect(result.rows).toHaveLength(1);
  return result.rows[0]!;
}

describe('GET .../provision-secret', () => {
  test('returns id, secret and version with Cache-Control: no-store, and audits the read with the request id', async () => {
    await api.post('/v1/device-groups', { id: 'read.1', provisionSecret: 'ps-read-1' });
    const okBefore = await counterValue(svc, 'provsec_secret_reads_total', { outcome: 'ok' });
    const res = await readSecret('read.1');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: 'read.1', provisionSecret: 'ps-read-1', secretVersion: 1 });
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.pragma).toBe('no-cache');
    const audit = await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] });
    expect(audit).toEqual([
      expect.objectContaining({
        action: 'provision-secret.read',
        outcome: 'ok',
        group_id: 'read.1',
        secret_version: 1,
        kek_id: expect.stringMatching(/^kek_/),
        actor_issuer: TEST_ISSUER,
        actor_subject: CERT_WORKER,
        client_address: expect.stringMatching(/127\.0\.0\.1/),
      }),
    ]);
    expect(await counterValue(svc, 'provsec_secret_reads_total', { outcome: 'ok' })).toBe(okBefore + 1);
  });

  test('a caller-supplied X-Request-Id is echoed and recorded in the audit row', async () => {
    await api.post('/v1/device-groups', { id: 'read.request-id', provisionSecret: 'ps' });
    const res = await api.get(groupPath('read.request-id', '/provision-secret'), {
      as: CERT_WORKER,
      headers: { 'X-Request-Id': 'trace-abc.123' },
    });
    expect(res.headers['x-request-id']).toBe('trace-abc.123');
    expect(await auditRowsFor(svc.pool, { request_id: 'trace-abc.123' })).toHaveLength(1);
  });

  test('multi-byte UTF-8 up to exactly 4096 bytes round-trips unchanged', async () => {
    const secret = `${'€'.repeat(1365)}a`; // 1365 x 3 bytes + 1 = 4096 bytes
    expect(Buffer.byteLength(secret)).toBe(4096);
    expect((await api.post('/v1/device-groups', { id: 'read.utf8', provisionSecret: secret })).status).toBe(201);
    expect(bodyOf<ProvisionSecretJson>(await readSecret('read.utf8')).provisionSecret).toBe(secret);
    const emoji = 'key-🔑-ü-\u0000-"quoted"\n';
    await api.post('/v1/device-groups', { id: 'read.emoji', provisionSecret: emoji });
    expect(bodyOf<ProvisionSecretJson>(await readSecret('read.emoji')).provisionSecret).toBe(emoji);
  });

  test('an unknown group is 404, without a secret, audited as an error', async () => {
    const res = await readSecret('read.nobody');
    expectProblem(res, 404, 'not-found');
    expect(res.headers['cache-control']).toBe('no-store');
    const audit = await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] });
    expect(audit).toEqual([
      expect.objectContaining({
        action: 'provision-secret.read',
        outcome: 'error',
        reason: 'not_found',
        group_id: 'read.nobody',
      }),
    ]);
  });
});

describe('PUT .../provision-secret (rotation)', () => {
  test('bumps secretVersion, seals under a fresh data key, and the old secret is never returned again', async () => {
    const created = await api.post('/v1/device-groups', { id: 'rotate.1', name: 'Rotate', provisionSecret: 'ps-old' });
    const before = await envelopeOf('rotate.1');
    const res = await api.put(groupPath('rotate.1', '/provision-secret'), { provisionSecret: 'ps-new' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: 'rotate.1',
      name: 'Rotate',
      secretVersion: 2,
      kekId: bodyOf<DeviceGroupJson>(created).kekId,
      createdAt: bodyOf<DeviceGroupJson>(created).createdAt,
    });
    expect(Date.parse(bodyOf<DeviceGroupJson>(res).updatedAt)).toBeGreaterThanOrEqual(
      Date.parse(bodyOf<DeviceGroupJson>(created).updatedAt),
    );
    expect(res.text).not.toMatch(/ps-old|ps-new/);
    const after = await envelopeOf('rotate.1');
    expect(after.secret_version).toBe(2);
    expect(after.envelope).not.toBe(before.envelope);
    const read = await readSecret('rotate.1');
    expect(read.body).toEqual({ id: 'rotate.1', provisionSecret: 'ps-new', secretVersion: 2 });
    expect(read.text).not.toContain('ps-old');
    expect(bodyOf<DeviceGroupJson>(await api.get(groupPath('rotate.1'))).secretVersion).toBe(2);
  });

  test('rotating to the same secret still makes a new version with a new envelope', async () => {
    await api.post('/v1/device-groups', { id: 'rotate.same', provisionSecret: 'same' });
    const before = await envelopeOf('rotate.same');
    expect(
      bodyOf<DeviceGroupJson>(await api.put(groupPath('rotate.same', '/provision-secret'), { provisionSecret: 'same' }))
        .secretVersion,
    ).toBe(2);
    expect((await envelopeOf('rotate.same')).envelope).not.toBe(before.envelope);
  });

  test('after rotation, POST with the original secret is a conflict, and with the current one a retry', async () => {
    await api.post('/v1/device-groups', { id: 'rotate.post', provisionSecret: 'v1' });
    await api.put(groupPath('rotate.post', '/provision-secret'), { provisionSecret: 'v2' });
    expect((await api.post('/v1/device-groups', { id: 'rotate.post', provisionSecret: 'v1' })).status).toBe(409);
    expect((await api.post('/v1/device-groups', { id: 'rotate.post', provisionSecret: 'v2' })).status).toBe(200);
  });

  test('several rotations count up one by one and each is audited with its version', async () => {
    await api.post('/v1/device-groups', { id: 'rotate.many', provisionSecret: 's1' });
    for (const version of [2, 3, 4]) {
      const res = await api.put(groupPath('rotate.many', '/provision-secret'), { provisionSecret: `s${version}` });
      expect(bodyOf<DeviceGroupJson>(res).secretVersion).toBe(version);
    }
    expect((await readSecret('rotate.many')).body).toMatchObject({ provisionSecret: 's4', secretVersion: 4 });
    const rotations = (
      await auditRowsFor(svc.pool, { group_id: 'rotate.many', action: 'provision-secret.rotate' })
    ).map((row) => [row.outcome, row.secret_version]);
    expect(rotations).toEqual([
      ['ok', 2],
      ['ok', 3],
      ['ok', 4],
    ]);
  });

  test('concurrent rotations never lose an update: each success has its own version, losers get 409', async () => {
    await api.post('/v1/device-groups', { id: 'rotate.race', provisionSecret: 'r0' });
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((index) =>
        api.put(groupPath('rotate.race', '/provision-secret'), { provisionSecret: `r${index}` }),
      ),
    );
    const successes = results.filter((res) => res.status === 200);
    expect(results.every((res) => res.status === 200 || res.status === 409)).toBe(true);
    const versions = successes.map((res) => bodyOf<DeviceGroupJson>(res).secretVersion).sort();
    expect(new Set(versions).size).toBe(versions.length);
    const final = await readSecret('rotate.race');
    expect(bodyOf<DeviceGroupJson>(final).secretVersion).toBe(1 + successes.length);
  });

  test('rotating an unknown group is 404 and creates nothing', async () => {
    expectProblem(await api.put(groupPath('rotate.nobody', '/provision-secret'), { provisionSecret: 'x' }), 404);
    expect((await svc.pool.query(`SELECT 1 FROM ota_groups WHERE id = 'rotate.nobody'`)).rowCount).toBe(0);
  });
});
