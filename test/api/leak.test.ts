/**
 * The secret's bytes appear nowhere but in the one response meant to carry them: not in any log
 * line, any column of any table (searched as text, hex and base64), any error body or /metrics,
 * through every path a secret travels: create, retry, conflict, rotation, reads, failed reads,
 * rejected input and deletion.
 */
import type { Response } from 'supertest';
import {
  type ApiClient,
  apiFor,
  bodyOf,
  CERT_WORKER,
  FLEET_A_WORKER,
  groupPath,
  type ProvisionSecretJson,
} from './support/api-client';
import { dumpAllTablesAsText, tableNames } from './support/database';
import { scrapeMetrics } from './support/metrics';
import { startTestService, type TestService } from '../support/test-service';

let svc: TestService;
let api: ApiClient;

/** Distinctive secrets: ASCII, multi-byte, long, one rotated away, one for a deleted group, one never accepted. */
const SECRETS = {
  ascii: 'LEAK-ascii-9f3c2e7a1b',
  unicode: 'LEAK-ünïcødé-秘密-🔑-4d2a',
  long: `LEAK-long-${'q7'.repeat(1500)}`,
  rotatedAway: 'LEAK-rotated-away-0c8e',
  current: 'LEAK-current-after-rotation-77aa',
  deleted: 'LEAK-deleted-group-51bd',
  conflicting: 'LEAK-conflicting-attempt-e0f1',
  rejectedTooLong: `LEAK-rejected-${'z'.repeat(4100)}`,
  rejectedWrongField: 'LEAK-wrong-field-6b6b',
  swappedVictim: 'LEAK-swapped-victim-a3a3',
};

/** Every body that was not the secret-read route's 200. */
const otherBodies: Array<{ what: string; text: string }> = [];
const secretResponses: Response[] = [];

function keep(what: string, res: Response): Response {
  const body = res.body as { provisionSecret?: unknown } | null | undefined;
  if (res.status === 200 && typeof body?.provisionSecret === 'string') secretResponses.push(res);
  else otherBodies.push({ what: `${what} (${res.status})`, text: `${JSON.stringify(res.headers)}\n${res.text}` });
  return res;
}

/** The forms a secret could leak in: as is, and its UTF-8 bytes as hex (both cases), base64 and base64url. */
function encodingsOf(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  // Long secrets: a 64-character window is enough to identify them and finds partial copies too.
  const windowOf = (text: string) => text.slice(0, 64);
  return [
    secret,
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
    bytes.toString('base64'),
    bytes.toString('base64url'),
  ].map(windowOf);
}

function expectNoSecretIn(haystack: string, where: string): void {
  for (const [name, secret] of Object.entries(SECRETS)) {
    for (const encoded of encodingsOf(secret)) {
      if (haystack.includes(encoded))
        throw new Error(`secret ${name} found in ${where} (as ${encoded.slice(0, 20)}...)`);
    }
  }
}

beforeAll(async () => {
  svc = await startTestService();
  api = apiFor(svc);
  const create = (id: string, provisionSecret: string) => api.post('/v1/device-groups', { id, provisionSecret });
  const read = (id: string, as = CERT_WORKER) => api.get(groupPath(id, '/provision-secret'), { as });

  keep('create ascii', await create('leak.ascii', SECRETS.ascii));
  keep('create unicode', await create('leak.unicode', SECRETS.unicode));
  keep('create long', await create('leak.long', SECRETS.long));
  keep('retry ascii', await create('leak.ascii', SECRETS.ascii));
  keep('conflict', await create('leak.ascii', SECRETS.conflicting));
  keep('create rotating', await create('leak.rotating', SECRETS.rotatedAway));
  keep('rotate', await api.put(groupPath('leak.rotating', '/provision-secret'), { provisionSecret: SECRETS.current }));
  keep('create deleted', await create('leak.deleted', SECRETS.deleted));
  keep('read deleted', await read('leak.deleted'));
  keep('delete', await api.delete(groupPath('leak.deleted')));
  keep('too long', await create('leak.rejected', SECRETS.rejectedTooLong));
  keep('wrong field', await api.post('/v1/device-groups', { id: 'leak.rejected', secret: SECRETS.rejectedWrongField }));
  keep(
    'wrong field in rotate',
    await api.put(groupPath('leak.ascii', '/provision-secret'), {
      provisionSecret: SECRETS.rejectedWrongField,
      extra: SECRETS.rejectedWrongField,
    }),
  );
  keep('secret in an invalid id', await create(`${SECRETS.rejectedWrongField} x`, 'x'));
  for (const id of ['leak.ascii', 'leak.unicode', 'leak.long', 'leak.rotating']) keep(`read ${id}`, await read(id));
  keep('denied read', await read('leak.ascii', FLEET_A_WORKER));
  keep('metadata', await api.get(groupPath('leak.ascii')));
  keep('list', await api.get('/v1/device-groups'));
  // A read that fails closed: its envelope comes from another row.
  keep('create victim', await create('leak.victim', SECRETS.swappedVictim));
  await svc.pool.query(
    `UPDATE ota_groups AS target SET provision_secret_envelope = source.provision_secret_envelope, kek_id = source.kek_id
       FROM ota_groups AS source WHERE target.id = 'leak.victim' AND source.id = 'leak.ascii'`,
  );
  keep('read swapped', await read('leak.victim'));
  keep('audit events', await api.get('/v1/audit-events?limit=1000', { as: 'auditor' }));
  keep('keys', await api.get('/v1/keys', { as: 'key-admin' }));
});
afterAll(() => svc.stop());

test('control: the search finds a secret in each encoding it looks for', () => {
  for (const encoded of encodingsOf(SECRETS.unicode))
    expect(() => expectNoSecretIn(`prefix ${encoded} suffix`, 'control')).toThrow(/secret unicode/);
});

test('the secret-read route is the only place the secrets came back, and as sent', () => {
  const returned = new Map(
    secretResponses.map((res) => [
      bodyOf<ProvisionSecretJson>(res).id,
      bodyOf<ProvisionSecretJson>(res).provisionSecret,
    ]),
  );
  expect(Object.fromEntries(returned)).toEqual({
    'leak.deleted': SECRETS.deleted,
    'leak.ascii': SECRETS.ascii,
    'leak.unicode': SECRETS.unicode,
    'leak.long': SECRETS.long,
    'leak.rotating': SECRETS.current,
  });
});

test('no error or metadata body (or header) carries any secret', () => {
  expect(otherBodies.length).toBeGreaterThan(15);
  for (const body of otherBodies) expectNoSecretIn(body.text, body.what);
});

test('no log line carries any secret in any encoding', () => {
  const logs = svc.logs();
  expect(logs.length).toBeGreaterThan(1000);
  expectNoSecretIn(logs, 'the logs');
});

test('no column of any table carries any secret in any encoding', async () => {
  expect(await tableNames(svc.pool)).toEqual(expect.arrayContaining(['public.ota_groups', 'public.audit_events']));
  const dump = await dumpAllTablesAsText(svc.pool);
  expect(dump).toContain('leak.ascii');
  expectNoSecretIn(dump, 'the database');
});

test('/metrics carries no secret and no group id', async () => {
  const metrics = await scrapeMetrics(svc);
  expectNoSecretIn(metrics, '/metrics');
  expect(metrics).not.toContain('leak.');
});

test('the secret-read response is marked uncacheable', () => {
  for (const res of secretResponses) {
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.pragma).toBe('no-cache');
  }
});
