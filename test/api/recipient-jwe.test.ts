/**
 * GET .../provision-secret for a worker with a registered recipientKey: a compact JWE to that key
 * (ECDH-ES+A256KW / A256GCM, kid, group id and version in the protected header) whose plaintext is
 * the JSON answer, audited with the kid; the secret shows in no response, log or row.
 */
// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, compactDecrypt, decodeProtectedHeader, type JWK } from 'jose';
import { apiFor, CERT_WORKER, expectProblem, groupPath, type ApiClient } from './support/api-client';
import { auditRowsFor } from './support/database';
import { LeakEvidence, describeFindings } from '../support/leak-sweep';
import { startTestService, TEST_POLICY, type TestService } from '../support/test-service';

const KEYED_WORKER = 'keyed-worker';
const ROTATING_WORKER = 'rotating-worker';

function workerKey(kid: string): { privateKey: KeyObject; publicJwk: JWK & { kid: string } } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid } };
}
const keyed = workerKey('keyed-worker-2026-12');
const oldKey = workerKey('rotating-old');
const newKey = workerKey('rotating-new');
const x25519 = (() => {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid: 'edge-x25519' } };
})();

const POLICY = {
  rules: [
    ...TEST_POLICY.rules,
    { subject: KEYED_WORKER, permissions: ['provision-secret:read'], recipientKey: keyed.publicJwk },
    // Key rotation: two keys registered during the overlap, the new one first.
    { subject: ROTATING_WORKER, permissions: ['provision-secret:read'], recipientKey: newKey.publicJwk },
    { subject: ROTATING_WORKER, permissions: ['provision-secret:read'], recipientKey: oldKey.publicJwk },
    { subject: 'edge-worker', permissions: ['provision-secret:read'], recipientKey: x25519.publicJwk },
  ],
};

const SECRET = 'JWE-only-secret-5e1f9a';
let svc: TestService;
let api: ApiClient;
const evidence = new LeakEvidence();

beforeAll(async () => {
  svc = await startTestService({ policy: POLICY });
  api = apiFor(svc);
  evidence.logs('service', () => svc.logs());
  for (const id of ['jwe.1', 'jwe.2']) {
    evidence.storedSecret(id, `${SECRET}-${id}`);
    await api.post('/v1/device-groups', { id, provisionSecret: `${SECRET}-${id}` });
  }
});
afterAll(() => svc.stop());

async function read(id: string, as: string, headers: Record<string, string> = {}) {
  const res = await api.get(groupPath(id, '/provision-secret'), { as, headers });
  evidence.response('GET', groupPath(id, '/provision-secret'), res.status, res.text);
  return res;
}

describe('a worker with a registered key', () => {
  test('gets application/jose: a compact JWE whose header names its kid, the group and the version, with no-store', async () => {
    const res = await read('jwe.1', KEYED_WORKER);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/jose/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text.split('.')).toHaveLength(5);
    expect(decodeProtectedHeader(res.text)).toEqual({
      alg: 'ECDH-ES+A256KW',
      enc: 'A256GCM',
      kid: 'keyed-worker-2026-12',
      'provsec.group': 'jwe.1',
      'provsec.ver': 1,
      epk: expect.objectContaining({ kty: 'EC', crv: 'P-256' }),
    });
  });

  test('the JWE decrypts with the registered private key to exactly the JSON answer, and with no other key', async () => {
    const res = await read('jwe.1', KEYED_WORKER);
    const { plaintext } = await compactDecrypt(res.text, keyed.privateKey);
    expect(JSON.parse(Buffer.from(plaintext).toString('utf8'))).toEqual({
      id: 'jwe.1',
      provisionSecret: `${SECRET}-jwe.1`,
      secretVersion: 1,
    });
    await expect(compactDecrypt(res.text, oldKey.privateKey)).rejects.toThrow(/decryption operation failed/);
    await expect(compactDecrypt(res.text, workerKey('stranger').privateKey)).rejects.toThrow();
  });

  test('a rotated secret carries the new version in the header and the plaintext', async () => {
    await api.put(groupPath('jwe.2', '/provision-secret'), { provisionSecret: `${SECRET}-jwe.2-v2` });
    evidence.storedSecret('jwe.2', `${SECRET}-jwe.2-v2`);
    const res = await read('jwe.2', KEYED_WORKER);
    expect(decodeProtectedHeader(res.text)['provsec.ver']).toBe(2);
    const { plaintext } = await compactDecrypt(res.text, keyed.privateKey);
    expect(JSON.parse(Buffer.from(plaintext).toString('utf8'))).toMatchObject({ secretVersion: 2 });
  });

  test('an X25519 key works the same way', async () => {
    const res = await read('jwe.1', 'edge-worker');
    expect(decodeProtectedHeader(res.text)).toMatchObject({ kid: 'edge-x25519', epk: { kty: 'OKP', crv: 'X25519' } });
    const { plaintext } = await compactDecrypt(res.text, x25519.privateKey);
    expect(JSON.parse(Buffer.from(plaintext).toString('utf8'))).toMatchObject({ id: 'jwe.1' });
  });

  test('Accept: application/json does not downgrade it to plaintext', async () => {
    const res = await read('jwe.1', KEYED_WORKER, { Accept: 'application/json' });
    expect(res.headers['content-type']).toMatch(/^application\/jose/);
  });

  test('the audit record names the kid; a worker without a key is recorded as plaintext JSON', async () => {
    const jwe = await read('jwe.1', KEYED_WORKER);
    expect(await auditRowsFor(svc.pool, { request_id: jwe.headers['x-request-id'] })).toEqual([
      expect.objectContaining({
        action: 'provision-secret.read',
        outcome: 'ok',
        secret_delivery: 'jwe',
        recipient_kid: 'keyed-worker-2026-12',
      }),
    ]);
    const json = await read('jwe.1', CERT_WORKER);
    expect(json.headers['content-type']).toMatch(/^application\/json/);
    expect(await auditRowsFor(svc.pool, { request_id: json.headers['x-request-id'] })).toEqual([
      expect.objectContaining({ outcome: 'ok', secret_delivery: 'json', recipient_kid: null }),
    ]);
    const page = await api.get(`/v1/audit-events?groupId=jwe.1&limit=1000`, { as: 'auditor' });
    evidence.response('GET', '/v1/audit-events', page.status, page.text);
    const items = (page.body as { items: Array<Record<string, unknown>> }).items;
    expect(items.find((item) => item.requestId === jwe.headers['x-request-id'])).toMatchObject({
      secretDelivery: 'jwe',
      recipientKid: 'keyed-worker-2026-12',
    });
  });
});

describe('two registered keys (rotation overlap)', () => {
  test('without a thumbprint the first key in policy order is used; a thumbprint picks the other', async () => {
    expect(decodeProtectedHeader((await read('jwe.1', ROTATING_WORKER)).text).kid).toBe('rotating-new');
    const thumbprint = await calculateJwkThumbprint(oldKey.publicJwk, 'sha256');
    const res = await read('jwe.1', ROTATING_WORKER, { 'Provsec-Recipient-Thumbprint': thumbprint });
    expect(decodeProtectedHeader(res.text).kid).toBe('rotating-old');
    await expect(compactDecrypt(res.text, oldKey.privateKey)).resolves.toBeDefined();
  });

  test('a thumbprint of a key not registered for this worker is a 403, audited, never another key or JSON', async () => {
    const foreign = await calculateJwkThumbprint(keyed.publicJwk, 'sha256');
    const res = await read('jwe.1', ROTATING_WORKER, { 'Provsec-Recipient-Thumbprint': foreign });
    expectProblem(res, 403, 'recipient-key-not-registered');
    expect(await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] })).toEqual([
      expect.objectContaining({ outcome: 'denied', reason: 'recipient_key_not_registered', secret_delivery: null }),
    ]);
    expectProblem(await read('jwe.1', ROTATING_WORKER, { 'Provsec-Recipient-Thumbprint': 'not-a-thumbprint' }), 400);
  });
});

test('the secrets appear in no response body, log line or table row (leak sweep)', async () => {
  const report = await evidence.sweep([{ label: 'service', pool: svc.pool }]);
  expect(describeFindings(report.findings)).toBe('');
  expect(report.counts.authorizedReads).toBeGreaterThanOrEqual(8);
});

test('AUTH_REQUIRE_RECIPIENT_KEY=true refuses to start with a rule that reads secrets without a key', async () => {
  await expect(startTestService({ policy: POLICY, env: { AUTH_REQUIRE_RECIPIENT_KEY: 'true' } })).rejects.toThrow(
    /rules\[3\]: grants provision-secret:read without a recipientKey/,
  );
  const keyedOnly = { rules: [TEST_POLICY.rules[0], POLICY.rules[POLICY.rules.length - 4]] };
  const strict = await startTestService({ policy: keyedOnly, env: { AUTH_REQUIRE_RECIPIENT_KEY: 'true' } });
  await strict.stop();
});
