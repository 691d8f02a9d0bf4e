/**
 * The caller's mistakes: malformed bodies, ids, queries, oversize and non-JSON bodies. Each is a
 * 4xx problem+json that never echoes the submitted secret, and nothing is stored or changed.
 */
import { apiFor, expectProblem, groupPath, type ApiClient } from './support/api-client';
import { snapshotGroups } from './support/database';
import { startTestService, type TestService } from '../support/test-service';

let svc: TestService;
let api: ApiClient;

const EXISTING = 'valid.existing';
/** Every secret a test submits contains this, so one search proves none was echoed. */
const MARK = 'ps-VALIDATION-MARK';

beforeAll(async () => {
  svc = await startTestService();
  api = apiFor(svc);
  expect((await api.post('/v1/device-groups', { id: EXISTING, provisionSecret: `${MARK}-stored` })).status).toBe(201);
});
afterAll(() => svc.stop());

/** Runs `send`, expects a problem of `status`, and proves ota_groups is byte-for-byte as before. */
async function expectRejectedUnchanged(
  send: () => Promise<import('supertest').Response>,
  status: number,
  kind?: string,
): Promise<Record<string, unknown>> {
  const before = await snapshotGroups(svc.pool);
  const res = await send();
  expectProblem(res, status, kind);
  expect(res.text).not.toContain(MARK);
  expect(await snapshotGroups(svc.pool)).toEqual(before);
  return JSON.parse(res.text) as Record<string, unknown>;
}

const secret = (suffix = '') => `${MARK}${suffix}`;

/** Sends exact JSON text (supertest would form-encode a bare string and refuses a bare number). */
function sendJsonText(method: 'post' | 'put', path: string, text: string, contentType = 'application/json') {
  return api.send(method, path, (test) => test.set('Content-Type', contentType).send(text));
}
const overBytes = (unit: string, count: number) => MARK + unit.repeat(count);

describe('POST /v1/device-groups bodies', () => {
  test.each<[string, unknown, RegExp]>([
    ['a JSON array', [{ id: 'v.1', provisionSecret: secret() }], /must be a JSON object/],
    // express.json (strict) refuses a top-level scalar as malformed JSON before validation.
    ['a JSON string', secret(), /not valid JSON/],
    ['a number', 42, /not valid JSON/],
    ['null', null, /not valid JSON/],
    ['an empty object', {}, /id: .*provisionSecret: /],
    [
      'an unknown field',
      { id: 'v.unknown', provisionSecret: secret(), secretVersion: 7 },
      /unknown field\(s\) "secretVersion"/,
    ],
    ['the secret under a misspelt name', { id: 'v.misspelt', provisionsecret: secret() }, /unknown field/],
    ['id of the wrong type', { id: 12, provisionSecret: secret() }, /id: /],
    ['name of the wrong type', { id: 'v.name-type', name: 5, provisionSecret: secret() }, /name: /],
    ['secret of the wrong type (number)', { id: 'v.secret-type', provisionSecret: 1234 }, /provisionSecret: /],
    [
      'secret of the wrong type (object)',
      { id: 'v.secret-object', provisionSecret: { value: secret() } },
      /provisionSecret: /,
    ],
    ['secret of the wrong type (array)', { id: 'v.secret-array', provisionSecret: [secret()] }, /provisionSecret: /],
    ['id with a space', { id: 'v bad', provisionSecret: secret() }, /id: must be 1-128 characters/],
    ['id with a slash', { id: 'v/bad', provisionSecret: secret() }, /id: must be 1-128 characters/],
    ['id with non-ASCII letters', { id: 'gruppe-ä', provisionSecret: secret() }, /id: /],
    ['id with a newline', { id: 'v.bad\n', provisionSecret: secret() }, /id: /],
    ['empty id', { id: '', provisionSecret: secret() }, /id: /],
    ['id of 129 characters', { id: 'a'.repeat(129), provisionSecret: secret() }, /id: /],
    [
      'name of 257 characters',
      { id: 'v.long-name', name: 'n'.repeat(257), provisionSecret: secret() },
      /name: must be at most 256 characters/,
    ],
    ['empty secret', { id: 'v.empty', provisionSecret: '' }, /provisionSecret: must not be empty/],
    [
      'secret of 4097 ASCII bytes',
      { id: 'v.4097', provisionSecret: overBytes('x', 4097 - MARK.length) },
      /at most 4096 bytes/,
    ],
    [
      'secret of 4098 bytes in 3-byte characters (1366 code points)',
      { id: 'v.euro', provisionSecret: '€'.repeat(1366) },
      /at most 4096 bytes/,
    ],
    [
      'secret of 4097 bytes: 4-byte characters plus one',
      { id: 'v.emoji', provisionSecret: `${'🔑'.repeat(1024)}x` },
      /at most 4096 bytes/,
    ],
    [
      'secret with a lone high surrogate',
      { id: 'v.surrogate-high', provisionSecret: `${secret()}\ud800` },
      /valid Unicode/,
    ],
    [
      'secret with a lone low surrogate',
      { id: 'v.surrogate-low', provisionSecret: `\udc00${secret()}` },
      /valid Unicode/,
    ],
  ])('%s is 400 naming the rule, and nothing is stored', async (_name, body, reason) => {
    const problem = await expectRejectedUnchanged(
      () => sendJsonText('post', '/v1/device-groups', JSON.stringify(body)),
      400,
    );
    expect(problem.type).toMatch(/\/(bad-request|malformed-json)$/);
    expect(problem.detail).toMatch(reason);
  });

  test('the limits themselves are accepted: id of 128, name of 256, secret of exactly 4096 bytes', async () => {
    const id = 'b'.repeat(128);
    const res = await api.post('/v1/device-groups', {
      id,
      name: 'n'.repeat(256),
      provisionSecret: `${'é'.repeat(2047)}xy`,
    });
    expect(res.status).toBe(201);
    await api.delete(groupPath(id));
  });

  test('malformed JSON is 400 malformed-json', async () => {
    await expectRejectedUnchanged(
      () => sendJsonText('post', '/v1/device-groups', `{"id":"v.json","provisionSecret":"${MARK}"`),
      400,
      'malformed-json',
    );
  });

  test('duplicate JSON keys are not a way to smuggle a second secret past validation', async () => {
    // JSON.parse keeps the last value; whatever is kept must pass the same rules.
    const body = `{"id":"v.dup","provisionSecret":"${MARK}","provisionSecret":""}`;
    await expectRejectedUnchanged(() => sendJsonText('post', '/v1/device-groups', body), 400);
  });

  test('a body over 16 KiB is 413 before any parsing', async () => {
    const body = JSON.stringify({ id: 'v.huge', provisionSecret: MARK + 'x'.repeat(17 * 1024) });
    await expectRejectedUnchanged(() => sendJsonText('post', '/v1/device-groups', body), 413, 'payload-too-large');
  });

  test.each([
    ['text/plain', (body: string) => body],
    ['application/x-www-form-urlencoded', () => `id=v.form&provisionSecret=${MARK}`],
    [
      'multipart/form-data; boundary=x',
      () => `--x\r\nContent-Disposition: form-data; name="id"\r\n\r\nv.multi\r\n--x--\r\n`,
    ],
    ['application/xml', () => `<group id="v.xml">${MARK}</group>`],
  ])('Content-Type %s is 415', async (contentType, makeBody) => {
    const body = makeBody(JSON.stringify({ id: 'v.ct', provisionSecret: secret() }));
    await expectRejectedUnchanged(
      () => sendJsonText('post', '/v1/device-groups', body, contentType),
      415,
      'unsupported-media-type',
    );
  });

  test('a JSON body in an unsupported charset is 415', async () => {
    const body = JSON.stringify({ id: 'v.charset', provisionSecret: secret() });
    await expectRejectedUnchanged(
      () => sendJsonText('post', '/v1/device-groups', body, 'application/json; charset=ibm037'),
      415,
    );
  });
});

describe('PUT .../provision-secret bodies leave the stored secret as it was', () => {
  const path = groupPath(EXISTING, '/provision-secret');
  test.each<[string, unknown]>([
    ['not an object', [secret()]],
    ['no secret', {}],
    ['an unknown field next to the secret', { provisionSecret: secret(), id: 'other' }],
    ['secret of the wrong type', { provisionSecret: 99 }],
    ['empty secret', { provisionSecret: '' }],
    ['secret of 4097 bytes', { provisionSecret: overBytes('z', 4097 - MARK.length) }],
    ['secret just over in 2-byte characters', { provisionSecret: 'é'.repeat(2049) }],
    ['lone surrogate', { provisionSecret: `${secret()}\udbff` }],
  ])('%s is 400', async (_name, body) => {
    await expectRejectedUnchanged(() => sendJsonText('put', path, JSON.stringify(body)), 400, 'bad-request');
  });

  test('a text/plain body is 415 and an oversize one 413', async () => {
    await expectRejectedUnchanged(() => sendJsonText('put', path, secret(), 'text/plain'), 415);
    await expectRejectedUnchanged(
      () => sendJsonText('put', path, JSON.stringify({ provisionSecret: MARK + 'y'.repeat(20_000) })),
      413,
    );
  });

  test('afterwards the group still holds version 1 of its original secret', async () => {
    const res = await api.get(path, { as: 'system:serviceaccount:provisioning:cert-worker' });
    expect(res.body).toEqual({ id: EXISTING, provisionSecret: `${MARK}-stored`, secretVersion: 1 });
  });
});

describe('path ids', () => {
  test.each([
    ['a space', 'bad%20id'],
    ['an encoded slash', 'a%2Fb'],
    ['129 characters', 'c'.repeat(129)],
    ['non-ASCII', 'gr%C3%BCppe'],
    ['a percent-encoded NUL', 'x%00y'],
    ['a quote', "x'y"],
  ])('an id with %s is 400 on every group route, never a 404', async (_name, rawId) => {
    for (const [method, suffix] of [
      ['get', ''],
      ['delete', ''],
      ['get', '/provision-secret'],
    ] as const) {
      const subject = suffix ? 'system:serviceaccount:provisioning:cert-worker' : 'management-api';
      const problem = await expectRejectedUnchanged(
        () => api[method](`/v1/device-groups/${rawId}${suffix}`, { as: subject }),
        400,
        'bad-request',
      );
      expect(problem.detail).toMatch(/Invalid path/);
    }
    await expectRejectedUnchanged(
      () => api.put(`/v1/device-groups/${rawId}/provision-secret`, { provisionSecret: secret() }),
      400,
      'bad-request',
    );
  });
});

describe('query parameters', () => {
  test.each([
    ['limit=0', /must be at least 1/],
    ['limit=1001', /must be at most 1000/],
    ['limit=abc', /whole number/],
    ['limit=-1', /whole number/],
    ['limit=1.5', /whole number/],
    ['limit=', /whole number/],
    ['limit=99999', /whole number/],
    ['limit=1&limit=2', /limit/],
    ['after=bad%20cursor', /after/],
    ['after=' + 'd'.repeat(129), /after/],
    ['page=2', /unknown field/],
  ])('GET /v1/device-groups?%s is 400', async (query, reason) => {
    const problem = await expectRejectedUnchanged(() => api.get(`/v1/device-groups?${query}`), 400, 'bad-request');
    expect(problem.detail).toMatch(reason);
  });

  test.each([
    ['since=yesterday', /since: must be an RFC 3339 date-time/],
    ['since=2024-01-01', /since/],
    ['since=2024-01-01T00:00:00', /since/],
    ['since=2024-13-01T00:00:00Z', /since/],
    ['after=abc', /after: must be a cursor/],
    ['after=-1', /after/],
    ['after=1234567890123456789', /after/],
    ['limit=0', /limit/],
    ['limit=1001', /limit/],
    ['groupId=bad%20group', /groupId/],
    ['actor=', /actor/],
    ['actor=' + 'a'.repeat(513), /actor/],
    ['secret=1', /unknown field/],
  ])('GET /v1/audit-events?%s is 400', async (query, reason) => {
    const problem = await expectRejectedUnchanged(
      () => api.get(`/v1/audit-events?${query}`, { as: 'auditor' }),
      400,
      'bad-request',
    );
    expect(problem.detail).toMatch(reason);
  });

  test('a 400 lists the broken fields in invalidParams without echoing values', async () => {
    const res = await api.get('/v1/audit-events?limit=0&since=not-a-date', { as: 'auditor' });
    const problem = JSON.parse(res.text) as { invalidParams: string[] };
    expect(problem.invalidParams).toHaveLength(2);
    expect(res.text).not.toContain('not-a-date');
  });
});
