/**
 * Two properties of the secret read's own path, tried on the in-process service:
 * - the envelope is opened for the group id the caller asked for, not the id the row comes back
 *   with, so a column collation that folds case cannot serve one group's secret under another's
 *   name (here: a nondeterministic ICU collation on ota_groups.id, as an existing table may have);
 * - decoding the plaintext leaves no copy in Node's shared Buffer pool, which is never zeroed.
 */
import { randomUUID } from 'node:crypto';
import {
  apiFor,
  bodyOf,
  CERT_WORKER,
  expectProblem,
  FLEET_A_WORKER,
  groupPath,
  type ApiClient,
  type ProvisionSecretJson,
} from './support/api-client';
import { auditRowsFor } from './support/database';
import { startTestService, type TestService } from '../support/test-service';

let svc: TestService;
let api: ApiClient;

beforeAll(async () => {
  svc = await startTestService();
  api = apiFor(svc);
});
afterAll(() => svc.stop());

describe('a case-folding id column', () => {
  beforeAll(async () => {
    await svc.pool.query(
      "CREATE COLLATION case_insensitive (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
    );
    await svc.pool.query('ALTER TABLE ota_groups ALTER COLUMN id TYPE text COLLATE case_insensitive');
    expect(
      (await api.post('/v1/device-groups', { id: 'FLEET-A.1', provisionSecret: 'ps-upper-case-group' })).status,
    ).toBe(201);
  });

  test("the row matches another spelling of the id, but that read is not the group's and opens nothing", async () => {
    const res = await api.get(groupPath('fleet-a.1', '/provision-secret'), { as: FLEET_A_WORKER });
    expectProblem(res, 500, 'stored-secret-unreadable');
    expect(res.text).not.toContain('ps-upper-case-group');
  });

  test('even with the secret history forged to name that spelling, the AAD binds the requested id', async () => {
    // What only a writer of provsec's own tables could do: the rollback check then passes.
    await svc.pool.query(
      `INSERT INTO provision_secret_history (group_id, secret_version, data_layer_sha256)
       SELECT 'fleet-a.1', secret_version, provsec_envelope_data_layer_sha256(provision_secret_envelope)
         FROM ota_groups WHERE id = 'FLEET-A.1'`,
    );
    const res = await api.get(groupPath('fleet-a.1', '/provision-secret'), { as: FLEET_A_WORKER });
    expectProblem(res, 500, 'stored-secret-unreadable');
    expect(res.text).not.toContain('ps-upper-case-group');
    const audit = await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] });
    expect(audit.map((row) => [row.outcome, row.reason])).toContainEqual(['error', 'decryption_failed']);
  });

  test('the id as created still reads', async () => {
    const res = await api.get(groupPath('FLEET-A.1', '/provision-secret'), { as: CERT_WORKER });
    expect({ status: res.status, secret: bodyOf<ProvisionSecretJson>(res).provisionSecret }).toEqual({
      status: 200,
      secret: 'ps-upper-case-group',
    });
  });
});

test("after a secret read, Node's shared Buffer pool holds no copy of the secret", async () => {
  // Made at run time, never a literal: under Node 22 this test found its own literal in the pool,
  // among this file's other identifiers and string constants (what looks like V8's compile data).
  const secret = `ps-pool-probe-${randomUUID()}`;
  expect((await api.post('/v1/device-groups', { id: 'pool.probe', provisionSecret: secret })).status).toBe(201);
  // Start the read on a fresh pool (the creation's request body passed through the old one): a
  // small Buffer allocation is a slice of the current pool, and one that does not fit starts a new one.
  const previousPool = Buffer.allocUnsafe(1).buffer;
  let poolBefore = previousPool;
  while (poolBefore === previousPool) poolBefore = Buffer.allocUnsafe(Buffer.poolSize / 2 - 8).buffer;
  const res = await api.get(groupPath('pool.probe', '/provision-secret'), { as: CERT_WORKER });
  expect(bodyOf<ProvisionSecretJson>(res).provisionSecret).toBe(secret);
  const poolAfter = Buffer.allocUnsafe(1).buffer;
  // TextEncoder, not Buffer.from(secret): the probe itself must not put the secret in the pool.
  const needle = [...new TextEncoder().encode(secret)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  for (const pool of new Set([poolBefore, poolAfter])) expect(Buffer.from(pool).toString('hex')).not.toContain(needle);
});
