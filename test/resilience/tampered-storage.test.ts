/**
 * Tampered storage: someone with write access to the database damages stored envelopes. Each
 * case edits one row directly in SQL, reads the secret through the API as an authorized worker,
 * then restores the row. Field offsets come from docs/envelope-format.md (v1), written out here
 * independently of src/crypto.
 * Proves: never plaintext (in no encoding); always a clean 500 problem of type
 * stored-secret-unreadable (the server's data is wrong, not the caller's request); always an
 * audit_events row with outcome 'error' and the crypto error's code for that request id.
 */
import { randomBytes } from 'node:crypto';
import { describeFindings, LeakEvidence, needlesFor } from '../support/leak-sweep';
import { randomKekHex, startTestService, type TestService } from '../support/test-service';
import { type ApiClient, apiClient, newSecret, problemDefect, statusOf } from './support/api-client';

const WORKER = 'system:serviceaccount:provisioning:cert-worker';
const UNREADABLE_TYPE = 'https://provsec.dev/problems/stored-secret-unreadable';

type ErrorCode = 'malformed_envelope' | 'kek_unavailable' | 'decryption_failed' | 'stale_envelope';

interface StoredRow {
  envelope: Buffer;
  kekId: string;
  kekVersion: number | null;
  secretVersion: number;
}

/** The v1 layout (docs/envelope-format.md) for an envelope of `length` bytes, and what damage to each field must cause. */
function envelopeFields(length: number): Array<{ field: string; start: number; end: number; code: ErrorCode }> {
  return [
    { field: 'format version', start: 0, end: 1, code: 'malformed_envelope' },
    // The header then names a KEK the keyring does not hold.
    { field: 'KEK id', start: 1, end: 17, code: 'kek_unavailable' },
    { field: 'wrap nonce', start: 17, end: 29, code: 'decryption_failed' },
    { field: 'wrapped data key', start: 29, end: 61, code: 'decryption_failed' },
    { field: 'wrapped data key tag', start: 61, end: 77, code: 'decryption_failed' },
    { field: 'data nonce', start: 77, end: 89, code: 'decryption_failed' },
    // Any other length disagrees with the envelope's real size.
    { field: 'secret ciphertext length', start: 89, end: 91, code: 'malformed_envelope' },
    { field: 'secret ciphertext', start: 91, end: length - 16, code: 'decryption_failed' },
    { field: 'secret tag', start: length - 16, end: length, code: 'decryption_failed' },
  ];
}

describe('tampered storage: damaged, swapped, cut and orphaned envelopes', () => {
  const evidence = new LeakEvidence();
  const kekHex = randomKekHex();
  const secrets = new Map<string, string>();
  /** The envelope group tamper-rotated held at secret version 1, before its rotation. */
  let rotatedAwayV1: StoredRow;
  let svc: TestService;
  let client: ApiClient;
  let worker: string;
  let management: string;
  let caseNumber = 0;

  const readRow = async (id: string): Promise<StoredRow> => {
    const result = await svc.pool.query<{
      provision_secret_envelope: Buffer;
      kek_id: string;
      kek_version: number | null;
      secret_version: number;
    }>('SELECT provision_secret_envelope, kek_id, kek_version, secret_version FROM ota_groups WHERE id = $1', [id]);
    const row = result.rows[0];
    if (!row) throw new Error(`no row ${id}`);
    return {
      envelope: row.provision_secret_envelope,
      kekId: row.kek_id,
      kekVersion: row.kek_version,
      secretVersion: row.secret_version,
    };
  };
  /**
   * Writes the row as a writer of provsec's own tables too would (a database superuser): the secret
   * history is made to name the tampered envelope, so the read gets past the rollback check and
   * these cases prove what the envelope's own checks catch. A writer of ota_groups alone is
   * stopped earlier, as stale_envelope (the last cases).
   */
  const writeRow = async (id: string, row: StoredRow, options: { forgeHistory: boolean } = { forgeHistory: true }) => {
    await svc.pool.query(
      'UPDATE ota_groups SET provision_secret_envelope = $2, kek_id = $3, kek_version = $4, secret_version = $5 WHERE id = $1',
      [id, row.envelope, row.kekId, row.kekVersion, row.secretVersion],
    );
    if (options.forgeHistory)
      await svc.pool.query(
        `INSERT INTO provision_secret_history (group_id, secret_version, data_layer_sha256)
         VALUES ($1, $2, provsec_envelope_data_layer_sha256($3))`,
        [id, row.secretVersion, row.envelope],
      );
  };

  beforeAll(async () => {
    svc = await startTestService({
      keyFileContent: { key: kekHex },
      env: { SECRET_READ_RATE_LIMIT_PER_MINUTE: '1000000' },
    });
    client = apiClient(svc.url, { evidence });
    evidence.keyMaterial('kek', kekHex);
    evidence.logs('service', () => svc.logs());
    worker = await svc.token(WORKER);
    management = await svc.token('management-api');
    for (const id of ['tamper-a', 'tamper-b', 'tamper-rotated']) {
      const secret = newSecret(id);
      secrets.set(id, secret);
      evidence.storedSecret(id, secret);
      expect(
        statusOf(
          await client.send('POST', '/v1/device-groups', { token: management, json: { id, provisionSecret: secret } }),
        ),
      ).toBe(201);
    }
    rotatedAwayV1 = await readRow('tamper-rotated');
    const rotated = newSecret('tamper-rotated-v2');
    evidence.storedSecret('tamper-rotated', rotated);
    expect(
      statusOf(
        await client.send('PUT', '/v1/device-groups/tamper-rotated/provision-secret', {
          token: management,
          json: { provisionSecret: rotated },
        }),
      ),
    ).toBe(200);
    secrets.set('tamper-rotated', rotated);
  }, 30_000);

  afterAll(async () => {
    client?.close();
    await svc?.stop();
  });

  /**
   * Stores `tampered` in row `id`, reads the secret as the worker, restores the row. Returns what
   * was wrong with the answer or the audit trail (empty when the service failed closed correctly).
   */
  async function readTampered(
    id: string,
    tampered: StoredRow,
    code: ErrorCode,
    options = { forgeHistory: true },
  ): Promise<string[]> {
    const original = await readRow(id);
    const requestId = `tamper-${++caseNumber}`;
    await writeRow(id, tampered, options);
    let outcome;
    try {
      outcome = await client.send('GET', `/v1/device-groups/${id}/provision-secret`, {
        token: worker,
        headers: { 'x-request-id': requestId },
      });
    } finally {
      await writeRow(id, original);
    }
    const defects: string[] = [];
    const problem = problemDefect(outcome, 500);
    if (problem) defects.push(problem);
    const body = outcome.kind === 'response' ? outcome.body : '';
    if (problem === undefined && (JSON.parse(body) as { type: string }).type !== UNREADABLE_TYPE)
      defects.push(`problem type ${(JSON.parse(body) as { type: string }).type}`);
    for (const secret of secrets.values()) {
      for (const needle of needlesFor(secret))
        if (
          (needle.caseInsensitive ? body.toLowerCase() : body).includes(
            needle.caseInsensitive ? needle.text.toLowerCase() : needle.text,
          )
        )
          defects.push(`plaintext (${needle.form}) in the body`);
    }
    const audit = await svc.pool.query<{ action: string; outcome: string; reason: string | null }>(
      'SELECT action, outcome, reason FROM audit_events WHERE request_id = $1 ORDER BY id',
      [requestId],
    );
    if (
      !audit.rows.some(
        (row) => row.action === 'provision-secret.read' && row.outcome === 'error' && row.reason === code,
      )
    )
      defects.push(`audit rows ${JSON.stringify(audit.rows)}, expected an error row with reason ${code}`);
    return defects.map((defect) => `${requestId}: ${defect}`);
  }

  const flipBit = (envelope: Buffer, offset: number) => {
    const copy = Buffer.from(envelope);
    copy[offset] = (copy[offset] as number) ^ (1 << (offset % 8));
    return copy;
  };

  test('the rows are intact before tampering (the baseline opens)', async () => {
    for (const [id, secret] of secrets) {
      const read = await client.send('GET', `/v1/device-groups/${id}/provision-secret`, { token: worker });
      expect(read.kind === 'response' && (JSON.parse(read.body) as { provisionSecret: string }).provisionSecret).toBe(
        secret,
      );
    }
    // 91-byte header + secret + 16-byte tag (docs/envelope-format.md).
    expect((await readRow('tamper-a')).envelope.length).toBe(
      91 + Buffer.byteLength(secrets.get('tamper-a') as string) + 16,
    );
  });

  const fields = envelopeFields(91 + Buffer.byteLength(newSecret('tamper-a')) + 16);
  test.each(fields.map((entry) => [entry.field, entry.end - entry.start, entry.code, entry] as const))(
    'a flipped bit in the %s (each of its %i bytes) is a 500 stored-secret-unreadable, audited as %s, without plaintext',
    async (_field, _bytes, code, entry) => {
      const original = await readRow('tamper-a');
      const defects: string[] = [];
      for (let offset = entry.start; offset < entry.end; offset += 1) {
        defects.push(
          ...(await readTampered('tamper-a', { ...original, envelope: flipBit(original.envelope, offset) }, code)),
        );
      }
      expect(defects).toEqual([]);
    },
    30_000,
  );

  test('an envelope moved to another row, or to another secret version of its own row, does not open there', async () => {
    const rowA = await readRow('tamper-a');
    const rowB = await readRow('tamper-b');
    const current = await readRow('tamper-rotated');
    const defects = [
      // Another group's envelope, KEK columns and all.
      ...(await readTampered('tamper-b', { ...rowB, envelope: rowA.envelope }, 'decryption_failed')),
      ...(await readTampered('tamper-a', { ...rowA, envelope: rowB.envelope }, 'decryption_failed')),
      // The version-1 envelope presented as the current version 2, and version 2's presented as 1.
      ...(await readTampered('tamper-rotated', { ...current, envelope: rotatedAwayV1.envelope }, 'decryption_failed')),
      ...(await readTampered('tamper-rotated', { ...current, secretVersion: 1 }, 'decryption_failed')),
      ...(await readTampered('tamper-rotated', { ...current, secretVersion: 3 }, 'decryption_failed')),
      // Two envelopes spliced: A's header and wrapped key with B's secret layer.
      ...(await readTampered(
        'tamper-a',
        { ...rowA, envelope: Buffer.concat([rowA.envelope.subarray(0, 77), rowB.envelope.subarray(77)]) },
        'decryption_failed',
      )),
    ];
    expect(defects).toEqual([]);
  });

  test('truncated and extended envelopes are refused as malformed before any key is used', async () => {
    const row = await readRow('tamper-a');
    const { envelope } = row;
    const variants = [
      envelope.subarray(0, envelope.length - 1),
      envelope.subarray(0, envelope.length - 16),
      envelope.subarray(0, 91),
      envelope.subarray(0, 90),
      envelope.subarray(0, 17),
      envelope.subarray(0, 1),
      Buffer.alloc(0),
      Buffer.concat([envelope, Buffer.alloc(1)]),
      Buffer.concat([envelope, randomBytes(16)]),
      Buffer.concat([envelope, envelope]),
    ];
    const defects: string[] = [];
    for (const variant of variants)
      defects.push(...(await readTampered('tamper-a', { ...row, envelope: variant }, 'malformed_envelope')));
    expect(defects).toEqual([]);
  });

  test('a kek_id column that names no KEK of the keyring (or no KEK at all) fails closed as kek_unavailable', async () => {
    const row = await readRow('tamper-a');
    const defects = [
      ...(await readTampered(
        'tamper-a',
        { ...row, kekId: `kek_${randomBytes(16).toString('hex')}` },
        'kek_unavailable',
      )),
      ...(await readTampered('tamper-a', { ...row, kekId: 'not-a-kek-id' }, 'kek_unavailable')),
      ...(await readTampered('tamper-a', { ...row, kekId: row.kekId.toUpperCase() }, 'kek_unavailable')),
      ...(await readTampered('tamper-a', { ...row, kekVersion: -1 }, 'kek_unavailable')),
    ];
    expect(defects).toEqual([]);
    // One row under a missing KEK does not take the service out: the others still open.
    await writeRow('tamper-b', { ...(await readRow('tamper-b')), kekId: `kek_${'0'.repeat(32)}` });
    try {
      expect(statusOf(await client.send('GET', '/readyz'))).toBe(200);
      const other = await client.send('GET', '/v1/device-groups/tamper-a/provision-secret', { token: worker });
      expect(other.kind === 'response' && (JSON.parse(other.body) as { provisionSecret: string }).provisionSecret).toBe(
        secrets.get('tamper-a'),
      );
    } finally {
      await writeRow('tamper-b', { ...(await readRow('tamper-b')), kekId: row.kekId });
    }
  });

  test('a creation retried onto a tampered row is a 500 stored-secret-unreadable, audited as an error, and stores nothing', async () => {
    const row = await readRow('tamper-a');
    const requestId = 'tamper-create-retry';
    await writeRow('tamper-a', { ...row, envelope: flipBit(row.envelope, 100) });
    let outcome;
    try {
      outcome = await client.send('POST', '/v1/device-groups', {
        token: management,
        json: { id: 'tamper-a', provisionSecret: secrets.get('tamper-a') },
        headers: { 'x-request-id': requestId },
      });
      expect((await readRow('tamper-a')).envelope).toEqual(flipBit(row.envelope, 100));
    } finally {
      await writeRow('tamper-a', row);
    }
    expect(problemDefect(outcome, 500)).toBeUndefined();
    expect(outcome.kind === 'response' && (JSON.parse(outcome.body) as { type: string }).type).toBe(UNREADABLE_TYPE);
    const audit = await svc.pool.query<{ action: string; outcome: string; reason: string | null }>(
      'SELECT action, outcome, reason FROM audit_events WHERE request_id = $1',
      [requestId],
    );
    expect(audit.rows).toContainEqual({ action: 'device-group.create', outcome: 'error', reason: 'decryption_failed' });
  });

  test('without a forged secret history, a changed data layer is refused as stale before any key is used', async () => {
    const row = await readRow('tamper-a');
    const other = await readRow('tamper-b');
    const ownersOnly = { forgeHistory: false };
    const defects = [
      ...(await readTampered(
        'tamper-a',
        { ...row, envelope: flipBit(row.envelope, 80) },
        'stale_envelope',
        ownersOnly,
      )),
      ...(await readTampered(
        'tamper-a',
        { ...row, envelope: flipBit(row.envelope, row.envelope.length - 1) },
        'stale_envelope',
        ownersOnly,
      )),
      ...(await readTampered(
        'tamper-a',
        { ...row, envelope: row.envelope.subarray(0, 91) },
        'stale_envelope',
        ownersOnly,
      )),
      ...(await readTampered('tamper-a', { ...other, envelope: other.envelope }, 'stale_envelope', ownersOnly)),
      ...(await readTampered('tamper-rotated', { ...rotatedAwayV1 }, 'stale_envelope', ownersOnly)),
    ];
    expect(defects).toEqual([]);
  });

  test('after every case the restored rows open again', async () => {
    for (const [id, secret] of secrets) {
      const read = await client.send('GET', `/v1/device-groups/${id}/provision-secret`, { token: worker });
      expect(read.kind === 'response' && (JSON.parse(read.body) as { provisionSecret: string }).provisionSecret).toBe(
        secret,
      );
    }
    const errors = await svc.pool.query<{ count: number }>(
      "SELECT count(*)::int AS count FROM audit_events WHERE outcome = 'error'",
    );
    process.stdout.write(`tampered storage: ${caseNumber} tampered reads, ${errors.rows[0]?.count} audited errors\n`);
  });

  test('leak sweep: no secret or key bytes in the logs, tables or responses, except authorized secret reads', async () => {
    const report = await evidence.sweep([{ label: 'tamper', pool: svc.pool }]);
    expect(describeFindings(report.findings)).toBe('');
    expect(report.counts.authorizedReads).toBeGreaterThan(0);
  }, 30_000);
});
