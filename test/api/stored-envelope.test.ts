/**
 * A stored envelope that does not belong where it is fails closed: copied from another row, bound
 * to another secret version, under a KEK that does not exist, or with a flipped bit. A changed data
 * layer (another row's envelope, an old one, a damaged tag) is caught by provsec's secret history
 * (stale_envelope) before any key is used; the AAD and tags catch the rest. Each read is
 * a 500 problem+json without plaintext, an audit record with outcome `error`, and a log line that
 * names the group and the reason. The other rows stay readable.
 */
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
import { counterValue } from './support/metrics';
import { startTestService, type TestService } from '../support/test-service';

let svc: TestService;
let api: ApiClient;

const secretOf = (id: string) => `ps-envelope-${id}`;

beforeAll(async () => {
  svc = await startTestService();
  api = apiFor(svc);
});
afterAll(() => svc.stop());

async function createGroups(...ids: string[]): Promise<void> {
  for (const id of ids)
    expect((await api.post('/v1/device-groups', { id, provisionSecret: secretOf(id) })).status).toBe(201);
}

/** Reads `id` and proves the fail-closed answer; returns the audit reason recorded. */
async function expectFailsClosed(id: string, expectedReason: string, otherSecrets: string[] = []): Promise<void> {
  const errorsBefore = await counterValue(svc, 'provsec_secret_reads_total', { outcome: 'error' });
  const res = await api.get(groupPath(id, '/provision-secret'), { as: CERT_WORKER });
  expectProblem(res, 500, 'stored-secret-unreadable');
  for (const secret of [secretOf(id), ...otherSecrets]) expect(res.text).not.toContain(secret);
  expect(res.headers['cache-control']).toBe('no-store');
  const requestId = res.headers['x-request-id'] as string;

  // The read is recorded before decryption is tried (ok = "envelope fetched"), then the failure; an
  // envelope that is not the one provsec last stored is refused by the fetch itself, never opened.
  const audit = await auditRowsFor(svc.pool, { request_id: requestId });
  expect(audit.map((row) => [row.action, row.outcome, row.group_id, row.reason])).toEqual([
    ...(expectedReason === 'stale_envelope' ? [] : [['provision-secret.read', 'ok', id, null]]),
    ['provision-secret.read', 'error', id, expectedReason],
  ]);

  const logLine = svc
    .logs()
    .split('\n')
    .find((line) => line.includes(requestId) && line.includes('"level":"error"'));
  expect(logLine).toBeDefined();
  // Which group, and why (the crypto layer's own words: tag mismatch, unknown KEK, bad length...).
  expect(logLine).toMatch(new RegExp(`stored secret of group ${id.replace(/\./g, '\\.')} cannot be opened: \\w`));
  expect(logLine).toContain('StoredSecretUnreadableError');
  for (const secret of [secretOf(id), ...otherSecrets]) expect(svc.logs()).not.toContain(secret);
  expect(await counterValue(svc, 'provsec_secret_reads_total', { outcome: 'error' })).toBe(errorsBefore + 1);
}

async function expectReadable(id: string): Promise<void> {
  const res = await api.get(groupPath(id, '/provision-secret'), { as: CERT_WORKER });
  expect(res.status).toBe(200);
  expect(bodyOf<ProvisionSecretJson>(res).provisionSecret).toBe(secretOf(id));
}

test('an envelope copied from another row (with its KEK id and version) is refused as not the one stored for this group', async () => {
  await createGroups('swap.victim', 'swap.source');
  await svc.pool.query(
    `UPDATE ota_groups AS target
        SET provision_secret_envelope = source.provision_secret_envelope, kek_id = source.kek_id, kek_version = source.kek_version
       FROM ota_groups AS source
      WHERE target.id = 'swap.victim' AND source.id = 'swap.source'`,
  );
  await expectFailsClosed('swap.victim', 'stale_envelope', [secretOf('swap.source')]);
  await expectReadable('swap.source');
});

test('two rows with their envelopes exchanged both fail closed', async () => {
  await createGroups('exchange.a', 'exchange.b');
  await svc.pool.query(
    `UPDATE ota_groups AS target
        SET provision_secret_envelope = source.provision_secret_envelope
       FROM ota_groups AS source
      WHERE (target.id, source.id) IN (('exchange.a', 'exchange.b'), ('exchange.b', 'exchange.a'))`,
  );
  await expectFailsClosed('exchange.a', 'stale_envelope', [secretOf('exchange.b')]);
  await expectFailsClosed('exchange.b', 'stale_envelope', [secretOf('exchange.a')]);
});

test('an envelope presented for another secret version is refused: the AAD binds the version', async () => {
  await createGroups('version.bumped');
  await svc.pool.query(`UPDATE ota_groups SET secret_version = 2 WHERE id = 'version.bumped'`);
  await expectFailsClosed('version.bumped', 'decryption_failed');
});

test('an old envelope put back after a rotation (a rollback) is refused', async () => {
  await createGroups('version.rollback');
  const old = await svc.pool.query<{ provision_secret_envelope: Buffer }>(
    `SELECT provision_secret_envelope FROM ota_groups WHERE id = 'version.rollback'`,
  );
  await api.put(groupPath('version.rollback', '/provision-secret'), { provisionSecret: 'ps-envelope-rotated' });
  await svc.pool.query(`UPDATE ota_groups SET provision_secret_envelope = $1 WHERE id = 'version.rollback'`, [
    old.rows[0]!.provision_secret_envelope,
  ]);
  await expectFailsClosed('version.rollback', 'stale_envelope', ['ps-envelope-rotated']);
});

test('a kek_id the key source does not hold is refused without guessing another key', async () => {
  await createGroups('kek.unknown');
  await svc.pool.query(
    `UPDATE ota_groups SET kek_id = 'kek_00000000000000000000000000000000' WHERE id = 'kek.unknown'`,
  );
  await expectFailsClosed('kek.unknown', 'kek_unavailable');
});

test('a malformed kek_id in the row is refused', async () => {
  await createGroups('kek.malformed');
  await svc.pool.query(`UPDATE ota_groups SET kek_id = '../../etc/passwd' WHERE id = 'kek.malformed'`);
  await expectFailsClosed('kek.malformed', 'kek_unavailable');
});

test('a flipped bit anywhere in the wrapped data key or ciphertext is refused', async () => {
  await createGroups('tamper.tail', 'tamper.middle');
  // The last byte is in the secret's authentication tag; the middle one in the wrapped data key or ciphertext.
  await svc.pool.query(
    `UPDATE ota_groups SET provision_secret_envelope = set_byte(provision_secret_envelope, length(provision_secret_envelope) - 1, get_byte(provision_secret_envelope, length(provision_secret_envelope) - 1) # 1) WHERE id = 'tamper.tail'`,
  );
  await svc.pool.query(
    `UPDATE ota_groups SET provision_secret_envelope = set_byte(provision_secret_envelope, length(provision_secret_envelope) / 2, get_byte(provision_secret_envelope, length(provision_secret_envelope) / 2) # 128) WHERE id = 'tamper.middle'`,
  );
  // The tag is in the data layer the secret history fingerprints: refused before any key is used.
  await expectFailsClosed('tamper.tail', 'stale_envelope');
  await expectFailsClosed('tamper.middle', 'decryption_failed');
});

test('a truncated envelope is refused before any key is used', async () => {
  await createGroups('tamper.truncated');
  await svc.pool.query(
    `UPDATE ota_groups SET provision_secret_envelope = substring(provision_secret_envelope from 1 for 20) WHERE id = 'tamper.truncated'`,
  );
  await expectFailsClosed('tamper.truncated', 'stale_envelope');
});

test('a create retry against a tampered row does not answer 200 or 409 on data it cannot open', async () => {
  await createGroups('tamper.retry');
  await svc.pool.query(`UPDATE ota_groups SET secret_version = 5 WHERE id = 'tamper.retry'`);
  const res = await api.post('/v1/device-groups', { id: 'tamper.retry', provisionSecret: secretOf('tamper.retry') });
  expectProblem(res, 500, 'stored-secret-unreadable');
  expect(res.text).not.toContain(secretOf('tamper.retry'));
});

test('untouched rows stay readable throughout', async () => {
  await createGroups('untouched.1');
  await expectReadable('untouched.1');
  await expectReadable('swap.source');
});
