/**
 * The per-identity secret-read limit (SECRET_READ_RATE_LIMIT_PER_MINUTE=3 here): the fourth read
 * in a minute is a 429 problem with Retry-After, audited and counted, carrying no secret; other
 * identities and other routes are unaffected.
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

const SECRET = 'ps-rate-limited';
const readAs = (subject: string, id = 'rate.1') => api.get(groupPath(id, '/provision-secret'), { as: subject });

beforeAll(async () => {
  svc = await startTestService({ env: { SECRET_READ_RATE_LIMIT_PER_MINUTE: '3' } });
  api = apiFor(svc);
  for (const id of ['rate.1', 'rate.2'])
    expect((await api.post('/v1/device-groups', { id, provisionSecret: SECRET })).status).toBe(201);
});
afterAll(() => svc.stop());

test('three reads pass, the fourth is 429 with Retry-After, audited, counted, without the secret', async () => {
  for (let read = 1; read <= 3; read += 1) expect((await readAs(CERT_WORKER)).status).toBe(200);
  const limitedBefore = await counterValue(svc, 'provsec_auth_failures_total', { reason: 'rate_limited' });
  const deniedBefore = await counterValue(svc, 'provsec_secret_reads_total', { outcome: 'denied' });

  const res = await readAs(CERT_WORKER);
  expectProblem(res, 429, 'too-many-requests');
  const retryAfterSeconds = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfterSeconds)).toBe(true);
  expect(retryAfterSeconds).toBeGreaterThanOrEqual(1);
  expect(retryAfterSeconds).toBeLessThanOrEqual(60);
  expect(res.text).not.toContain(SECRET);
  expect(await auditRowsFor(svc.pool, { request_id: res.headers['x-request-id'] })).toEqual([
    expect.objectContaining({
      action: 'provision-secret.read',
      outcome: 'denied',
      reason: 'rate_limited',
      actor_subject: CERT_WORKER,
      group_id: 'rate.1',
    }),
  ]);
  expect(await counterValue(svc, 'provsec_auth_failures_total', { reason: 'rate_limited' })).toBe(limitedBefore + 1);
  expect(await counterValue(svc, 'provsec_secret_reads_total', { outcome: 'denied' })).toBe(deniedBefore + 1);
});

test('the limit is per identity, not per group: another group is limited for the same caller', async () => {
  expectProblem(await readAs(CERT_WORKER, 'rate.2'), 429);
});

test('other identities keep their own allowance', async () => {
  for (const subject of ['worker-pool-1', 'worker-pool-2']) {
    for (let read = 1; read <= 3; read += 1) {
      const res = await readAs(subject);
      expect(res.status).toBe(200);
      expect(bodyOf<ProvisionSecretJson>(res).provisionSecret).toBe(SECRET);
    }
  }
  expectProblem(await readAs('worker-pool-1'), 429);
});

test('the limited caller’s other routes are unaffected', async () => {
  expect((await api.get(groupPath('rate.1'), { as: CERT_WORKER })).status).toBe(200);
  expect((await api.get('/v1/device-groups', { as: CERT_WORKER })).status).toBe(200);
});

test('a refused token is 401 every time, never 429: authentication comes before the limiter', async () => {
  for (let attempt = 0; attempt < 5; attempt += 1)
    expect((await api.get(groupPath('rate.1', '/provision-secret'), { token: 'not.a.token' })).status).toBe(401);
});

test('a caller without the permission is 403 every time, never 429: authorization comes before the limiter', async () => {
  for (let attempt = 0; attempt < 5; attempt += 1) expectProblem(await readAs('management-api'), 403);
});
