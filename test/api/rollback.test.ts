/**
 * Rollback: a writer of `ota_groups` (the management API's code, or a bug in it) puts back a row
 * as it once was. The envelope's AAD cannot tell, because the old row is genuine; provsec's own
 * append-only history (sql/006) can. Each case restores the whole stored tuple (envelope, KEK id
 * and version, secret version) and reads it as an authorized worker: a 500 problem, no plaintext,
 * and one audit record with outcome `error`, reason `stale_envelope`, written by the read's own
 * statement. The legitimate changes (rotation, rewrap, delete and re-create) keep reading.
 */
import { createHash } from 'node:crypto';
import { importKekFromHex, Keyring, rewrapEnvelope, sealSecret } from '../../src/crypto';
import { EnvelopeV1Offsets } from '../../src/crypto/envelope-format';
import { rewrapAll } from '../../src/rotation/rewrap';
import { randomKekHex, startTestService, type TestService } from '../support/test-service';
import { waitFor } from '../rotation/support/rotation-kit';
import {
  type ApiClient,
  apiFor,
  bodyOf,
  CERT_WORKER,
  expectProblem,
  groupPath,
  type ProvisionSecretJson,
} from './support/api-client';
import { auditRowsFor } from './support/database';

let svc: TestService;
let api: ApiClient;
const kek1Hex = randomKekHex();

interface StoredTuple {
  provision_secret_envelope: Buffer;
  kek_id: string;
  kek_version: number | null;
  secret_version: number;
}

beforeAll(async () => {
  svc = await startTestService({ keyFileContent: { current: 1, keys: { '1': kek1Hex } } });
  api = apiFor(svc);
});
afterAll(() => svc.stop());

async function storedTuple(id: string): Promise<StoredTuple> {
  const result = await svc.pool.query<StoredTuple>(
    'SELECT provision_secret_envelope, kek_id, kek_version, secret_version FROM ota_groups WHERE id = $1',
    [id],
  );
  const row = result.rows[0];
  if (!row) throw new Error(`no row ${id}`);
  return row;
}

/** What a writer of ota_groups can do: put a whole row back as it was, inserting it if it is gone. */
async function restore(id: string, tuple: StoredTuple): Promise<void> {
  await svc.pool.query(
    `INSERT INTO ota_groups (id, provision_secret_envelope, kek_id, kek_version, secret_version) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (id) DO UPDATE SET provision_secret_envelope = $2, kek_id = $3, kek_version = $4, secret_version = $5`,
    [id, tuple.provision_secret_envelope, tuple.kek_id, tuple.kek_version, tuple.secret_version],
  );
}

async function expectSecret(id: string, secret: string): Promise<void> {
  const res = await api.get(groupPath(id, '/provision-secret'), { as: CERT_WORKER });
  expect({ status: res.status, secret: bodyOf<ProvisionSecretJson>(res).provisionSecret }).toEqual({
    status: 200,
    secret,
  });
}

/** The fail-closed answer to a stale envelope; `neverSeen` are the secrets it must not release. */
async function expectStale(id: string, neverSeen: string[]): Promise<void> {
  const res = await api.get(groupPath(id, '/provision-secret'), { as: CERT_WORKER });
  expectProblem(res, 500, 'stored-secret-unreadable');
  expect((JSON.parse(res.text) as { detail: string }).detail).toContain('stale_envelope');
  for (const secret of neverSeen) {
    expect(res.text).not.toContain(secret);
    expect(svc.logs()).not.toContain(secret);
  }
  const audit = await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] });
  expect(audit.map((row) => [row.action, row.group_id, row.outcome, row.reason])).toEqual([
    ['provision-secret.read', id, 'error', 'stale_envelope'],
  ]);
}

test('an older envelope of the same row restored after a secret rotation is refused as stale', async () => {
  expect((await api.post('/v1/device-groups', { id: 'rb.rotated', provisionSecret: 'ps-rb-old' })).status).toBe(201);
  const before = await storedTuple('rb.rotated');
  expect((await api.put(groupPath('rb.rotated', '/provision-secret'), { provisionSecret: 'ps-rb-new' })).status).toBe(
    200,
  );
  await expectSecret('rb.rotated', 'ps-rb-new');

  await restore('rb.rotated', before);
  await expectStale('rb.rotated', ['ps-rb-old', 'ps-rb-new']);
});

test("a deleted group's envelope written back under the re-created group is refused as stale", async () => {
  expect((await api.post('/v1/device-groups', { id: 'rb.recreated', provisionSecret: 'ps-rb-first' })).status).toBe(
    201,
  );
  const first = await storedTuple('rb.recreated');
  expect((await api.delete(groupPath('rb.recreated'))).status).toBe(204);
  expect((await api.post('/v1/device-groups', { id: 'rb.recreated', provisionSecret: 'ps-rb-second' })).status).toBe(
    201,
  );
  // Both incarnations are at secret version 1: only provsec's history tells them apart.
  expect((await storedTuple('rb.recreated')).secret_version).toBe(first.secret_version);
  await expectSecret('rb.recreated', 'ps-rb-second');

  await restore('rb.recreated', first);
  await expectStale('rb.recreated', ['ps-rb-first', 'ps-rb-second']);
});

test('a deleted group put back into ota_groups is refused as stale', async () => {
  expect((await api.post('/v1/device-groups', { id: 'rb.deleted', provisionSecret: 'ps-rb-deleted' })).status).toBe(
    201,
  );
  const stored = await storedTuple('rb.deleted');
  expect((await api.delete(groupPath('rb.deleted'))).status).toBe(204);

  await restore('rb.deleted', stored);
  await expectStale('rb.deleted', ['ps-rb-deleted']);
});

test('a creation retried onto a rolled-back row fails closed instead of comparing with the old secret', async () => {
  expect((await api.post('/v1/device-groups', { id: 'rb.retry', provisionSecret: 'ps-rb-retry-1' })).status).toBe(201);
  const before = await storedTuple('rb.retry');
  expect((await api.put(groupPath('rb.retry', '/provision-secret'), { provisionSecret: 'ps-rb-retry-2' })).status).toBe(
    200,
  );
  await restore('rb.retry', before);

  const res = await api.post('/v1/device-groups', { id: 'rb.retry', provisionSecret: 'ps-rb-retry-1' });
  expectProblem(res, 500, 'stored-secret-unreadable');
  const audit = await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] });
  expect(audit.map((row) => [row.action, row.outcome, row.reason])).toEqual([
    ['device-group.create', 'error', 'stale_envelope'],
  ]);
});

test('rotation, rewrap to a new KEK, and delete with re-create keep reading', async () => {
  const ids = ['rb.keep.1', 'rb.keep.2', 'rb.keep.3'];
  for (const id of ids)
    expect((await api.post('/v1/device-groups', { id, provisionSecret: `ps-${id}` })).status).toBe(201);
  expect(
    (await api.put(groupPath('rb.keep.1', '/provision-secret'), { provisionSecret: 'ps-rb.keep.1-v2' })).status,
  ).toBe(200);
  expect((await api.delete(groupPath('rb.keep.2'))).status).toBe(204);
  expect((await api.post('/v1/device-groups', { id: 'rb.keep.2', provisionSecret: 'ps-rb.keep.2-again' })).status).toBe(
    201,
  );

  // A KEK rotation: the rewrap rewrites every envelope's header and leaves the history alone.
  const historyBefore = await svc.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM provision_secret_history');
  svc.writeKeyFile({ current: 2, keys: { '1': kek1Hex, '2': randomKekHex() } });
  await waitFor(() => svc.service.keySource.currentKeyring()?.current.kekVersion === 2, 'the new keyring');
  const result = await rewrapAll({ pool: svc.pool, keys: svc.service.keySource }, { batchSize: 2 });
  expect(result).toMatchObject({ failed: 0, remaining: 0 });
  expect(result.rewrapped).toBeGreaterThanOrEqual(ids.length);
  const historyAfter = await svc.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM provision_secret_history');
  expect(historyAfter.rows[0]?.n).toBe(historyBefore.rows[0]?.n);

  await expectSecret('rb.keep.1', 'ps-rb.keep.1-v2');
  await expectSecret('rb.keep.2', 'ps-rb.keep.2-again');
  await expectSecret('rb.keep.3', 'ps-rb.keep.3');
  expect(
    (await api.put(groupPath('rb.keep.3', '/provision-secret'), { provisionSecret: 'ps-rb.keep.3-v2' })).status,
  ).toBe(200);
  await expectSecret('rb.keep.3', 'ps-rb.keep.3-v2');
});

test('the SQL fingerprint covers exactly the data layer a rewrap keeps, and nothing a rewrap changes', async () => {
  const kek1 = importKekFromHex(kek1Hex, 1);
  const kek2 = importKekFromHex(randomKekHex(), 2);
  const context = { groupId: 'rb.fingerprint', secretVersion: 4 };
  const sealed = sealSecret(Buffer.from('ps-fingerprint'), context, Keyring.single(kek1)).envelope;
  const rewrapped = rewrapEnvelope(sealed, context, Keyring.create([kek1, kek2], kek2.kekId)).envelope;
  const fingerprint = async (envelope: Uint8Array) =>
    (
      await svc.pool.query<{ hex: string }>("SELECT encode(provsec_envelope_data_layer_sha256($1), 'hex') AS hex", [
        Buffer.from(envelope),
      ])
    ).rows[0]?.hex;

  const dataLayer = Buffer.from(sealed).subarray(EnvelopeV1Offsets.dataNonce);
  expect(await fingerprint(sealed)).toBe(createHash('sha256').update(dataLayer).digest('hex'));
  expect(Buffer.from(rewrapped).subarray(0, EnvelopeV1Offsets.dataNonce)).not.toEqual(
    Buffer.from(sealed).subarray(0, EnvelopeV1Offsets.dataNonce),
  );
  expect(await fingerprint(rewrapped)).toBe(await fingerprint(sealed));
});
