/**
 * Every attack in test/fixtures/reference/jwt-attacks.txt, end to end over HTTP against the secret
 * read route: a 401 with `WWW-Authenticate: Bearer` and the same generic body whatever went wrong,
 * no data, the specific reason in the audit log, the metric and the log (never the token itself).
 * The verifier's own unit tests are in test/auth; this proves the HTTP layer wires them in.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import {
  type ApiClient,
  apiFor,
  bodyOf,
  expectGenericUnauthorized,
  groupPath,
  MANAGEMENT,
  type ProvisionSecretJson,
} from './support/api-client';
import { auditRowsFor, snapshotGroups } from './support/database';
import { counterValue } from './support/metrics';
import {
  base64url,
  buildToken,
  hmacSignature,
  keySetOf,
  makeKey,
  nowSeconds,
  selfSignedCertificateBase64,
  signatureFor,
  signedToken,
} from '../support/jwt-forgery';
import { startTestService, TEST_ISSUER, type TestService } from '../support/test-service';

const WORKER = 'system:serviceaccount:provisioning:cert-worker';
const GROUP = 'attack.1';
const SECRET = 'ps-jwt-attack-target';
const SECRET_PATH = groupPath(GROUP, '/provision-secret');

const rsaKey = makeKey('RS256', 'rsa-1');
const ecKey = makeKey('ES256', 'ec-1');
const edKey = makeKey('EdDSA', 'ed-1');
const attackerEc = makeKey('ES256', 'ec-1');
const attackerRsa = makeKey('RS256', 'rsa-1');
const outsider = makeKey('ES256', 'attacker-1');

let svc: TestService;
let api: ApiClient;

/** Claims that pass: our issuer and audience, issued now, five minutes to live. */
function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds();
  return { iss: TEST_ISSUER, aud: 'provsec', sub: WORKER, iat: now, exp: now + 300, ...overrides };
}

function without(object: Record<string, unknown>, ...names: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([name]) => !names.includes(name)));
}

function hs256WithKeyText(keyText: string | Buffer, kid: string): string {
  return buildToken({ alg: 'HS256', kid, typ: 'JWT' }, claims(), (input) => hmacSignature(keyText, input));
}

beforeAll(async () => {
  // The service trusts a key set of one RSA, one EC and one Ed25519 key, signed for by hand here.
  const directory = mkdtempSync(join(tmpdir(), 'provsec-jwks-'));
  const jwksFile = join(directory, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify(keySetOf(rsaKey, ecKey, edKey)));
  svc = await startTestService({ env: { AUTH_JWKS_FILE: jwksFile } });
  api = apiFor(svc, null);
  const management = signedToken(ecKey, claims({ sub: MANAGEMENT }));
  expect(
    (await api.post('/v1/device-groups', { id: GROUP, provisionSecret: SECRET }, { token: management })).status,
  ).toBe(201);
});
afterAll(() => svc.stop());

/** Sends the token to the secret route and proves a full refusal with this reason. */
async function expectRefused(token: string, reason: string): Promise<void> {
  const before = await counterValue(svc, 'provsec_auth_failures_total', { reason });
  const res = await api.get(SECRET_PATH, { token });
  expectGenericUnauthorized(res);
  expect(res.text).not.toContain(SECRET);
  const requestId = res.headers['x-request-id'] as string;
  expect(await auditRowsFor(svc.pool, { request_id: requestId })).toEqual([
    expect.objectContaining({
      action: 'auth',
      outcome: 'denied',
      reason,
      actor_subject: null,
      actor_issuer: null,
      group_id: null,
    }),
  ]);
  expect(await counterValue(svc, 'provsec_auth_failures_total', { reason })).toBe(before + 1);
  const logLine = svc
    .logs()
    .split('\n')
    .find((line) => line.includes(requestId) && line.includes('bearer token refused'));
  expect(logLine).toContain(`"tokenReason":"${reason}"`);
  // The log names the reason, never the credential.
  const signature = token.split('.')[2];
  if (signature && signature.length > 16) expect(svc.logs()).not.toContain(signature);
}

describe('controls', () => {
  test.each([
    ['RS256', rsaKey],
    ['ES256', ecKey],
    ['EdDSA', edKey],
  ] as const)('a properly signed %s token reads the secret', async (_alg, key) => {
    const res = await api.get(SECRET_PATH, { token: signedToken(key, claims()) });
    expect(res.status).toBe(200);
    expect(bodyOf<ProvisionSecretJson>(res).provisionSecret).toBe(SECRET);
  });
});

describe('algorithm attacks', () => {
  test.each(['none', 'None', 'NONE'])('alg "%s" with an empty signature', async (alg) => {
    await expectRefused(
      buildToken({ alg, typ: 'JWT' }, claims(), () => ''),
      'algorithm_not_allowed',
    );
  });

  test.each([
    [
      'the EC public key as PEM',
      () => hs256WithKeyText(ecKey.publicKey.export({ format: 'pem', type: 'spki' }), 'ec-1'),
    ],
    [
      'the RSA public key as PEM',
      () => hs256WithKeyText(rsaKey.publicKey.export({ format: 'pem', type: 'spki' }), 'rsa-1'),
    ],
    [
      'the RSA public key as DER',
      () => hs256WithKeyText(rsaKey.publicKey.export({ format: 'der', type: 'spki' }), 'rsa-1'),
    ],
    ['the EC public key as JWK text', () => hs256WithKeyText(JSON.stringify(ecKey.publicJwk), 'ec-1')],
  ])('algorithm confusion: HS256 keyed with %s', async (_what, token) => {
    await expectRefused(token(), 'algorithm_not_allowed');
  });

  test('algorithm substitution: an ES256 header on the RSA key id', async () => {
    await expectRefused(
      buildToken({ alg: 'ES256', kid: 'rsa-1', typ: 'JWT' }, claims(), (input) =>
        signatureFor('ES256', attackerEc.privateKey, input),
      ),
      'unknown_key',
    );
  });

  test('algorithm substitution: an RS256 header on the EC key id', async () => {
    await expectRefused(
      buildToken({ alg: 'RS256', kid: 'ec-1', typ: 'JWT' }, claims(), (input) =>
        signatureFor('RS256', attackerRsa.privateKey, input),
      ),
      'unknown_key',
    );
  });
});

describe('key attacks', () => {
  test('foreign key under a trusted kid (EC)', async () => {
    await expectRefused(signedToken(attackerEc, claims()), 'bad_signature');
  });

  test('foreign key under a trusted kid (RSA)', async () => {
    await expectRefused(signedToken(attackerRsa, claims()), 'bad_signature');
  });

  test('unknown kid', async () => {
    await expectRefused(signedToken(ecKey, claims(), { kid: 'no-such-kid' }), 'unknown_key');
  });

  test('a token from a key outside the JWKS, under its own kid', async () => {
    await expectRefused(signedToken(outsider, claims()), 'unknown_key');
  });

  test('embedded jwk carrying the attacker public key', async () => {
    await expectRefused(signedToken(attackerEc, claims(), { jwk: attackerEc.publicJwk }), 'forbidden_header');
  });

  test.each(['jku', 'x5u'])('%s injection pointing at an attacker key set', async (parameter) => {
    await expectRefused(
      signedToken(outsider, claims(), { [parameter]: 'https://attacker.example/jwks.json' }),
      'forbidden_header',
    );
  });

  test('x5c injection: a real self-signed chain matching the signature', async () => {
    await expectRefused(
      signedToken(outsider, claims(), { x5c: [selfSignedCertificateBase64(outsider)] }),
      'forbidden_header',
    );
  });

  test('kid injection: a path with HS256 over the empty key (/dev/null)', async () => {
    await expectRefused(
      buildToken({ alg: 'HS256', kid: '../../../../dev/null', typ: 'JWT' }, claims(), (input) =>
        hmacSignature('', input),
      ),
      'algorithm_not_allowed',
    );
  });

  test.each(['../../../../dev/null', "x' UNION SELECT 'attacker-key' --", '"; DROP TABLE ota_groups; --'])(
    'kid injection: kid %j is only a lookup key',
    async (kid) => {
      await expectRefused(signedToken(attackerEc, claims(), { kid }), 'unknown_key');
      expect((await svc.pool.query(`SELECT 1 FROM ota_groups WHERE id = $1`, [GROUP])).rowCount).toBe(1);
    },
  );

  test.each([[['exp']], [['urn:attacker:ext']]])('unknown crit %j', async (crit) => {
    await expectRefused(
      signedToken(ecKey, claims(), { crit, 'urn:attacker:ext': true }),
      'unsupported_critical_header',
    );
  });

  test('unencoded payload: b64 false with crit b64', async () => {
    await expectRefused(signedToken(ecKey, claims(), { b64: false, crit: ['b64'] }), 'forbidden_header');
  });
});

describe('claim attacks (properly signed by a trusted key)', () => {
  const now = nowSeconds();
  test.each([
    ['expired', { iat: now - 600, exp: now - 120 }, 'expired'],
    ['not yet valid: nbf in the future', { nbf: now + 600 }, 'not_yet_valid'],
    ['too long-lived: exp - iat = 3601 s', { iat: now, exp: now + 3601 }, 'lifetime_too_long'],
    ['too long-lived: a year', { iat: now, exp: now + 365 * 86400 }, 'lifetime_too_long'],
    ['iat in the future', { iat: now + 600, exp: now + 900 }, 'issued_in_future'],
    ['wrong audience', { aud: 'another-service' }, 'wrong_audience'],
    ['audience array without this service', { aud: ['another-service', 'kubernetes'] }, 'wrong_audience'],
    ['cross-token: an ID token for a client id', { aud: 'kubectl', nonce: 'n-1', azp: 'kubectl' }, 'wrong_audience'],
    ['wrong issuer', { iss: 'https://attacker.example' }, 'wrong_issuer'],
    ['issuer differing only by a trailing slash', { iss: `${TEST_ISSUER}/` }, 'wrong_issuer'],
    ['exp as a string', { exp: String(now + 300) }, 'invalid_claim'],
    ['nbf as an object', { nbf: { $gt: 0 } }, 'invalid_claim'],
    ['iat as a float far out of range', { iat: 1e300 }, 'invalid_claim'],
  ])('%s', async (_name, overrides, reason) => {
    await expectRefused(signedToken(ecKey, claims(overrides)), reason);
  });

  test.each([
    ['missing exp', 'exp'],
    ['missing iat', 'iat'],
    ['missing aud', 'aud'],
    ['missing iss', 'iss'],
    ['missing sub', 'sub'],
  ])('%s', async (_name, claim) => {
    await expectRefused(signedToken(ecKey, without(claims(), claim)), 'missing_claim');
  });

  test('cross-token: a token typed as something other than an access token (typ dpop+jwt)', async () => {
    await expectRefused(signedToken(ecKey, claims(), { typ: 'dpop+jwt' }), 'wrong_type');
  });
});

describe('token surgery', () => {
  test('signature tampered: one bit flipped', async () => {
    const [header, payload, signature] = signedToken(ecKey, claims()).split('.') as [string, string, string];
    const bytes = Buffer.from(signature, 'base64url');
    bytes[10] = (bytes[10] as number) ^ 0x01;
    await expectRefused(`${header}.${payload}.${base64url(bytes)}`, 'bad_signature');
  });

  test('payload swapped: the payload of one valid token under the header and signature of another', async () => {
    const [header, , signature] = signedToken(ecKey, claims({ sub: 'someone-else' })).split('.') as [
      string,
      string,
      string,
    ];
    const [, payload] = signedToken(ecKey, claims()).split('.') as [string, string, string];
    await expectRefused(`${header}.${payload}.${signature}`, 'bad_signature');
  });

  test.each([
    ['stripped signature "h.p."', (token: string) => token.split('.').slice(0, 2).join('.') + '.'],
    ['stripped signature "h.p"', (token: string) => token.split('.').slice(0, 2).join('.')],
    ['five parts (a JWE shape)', (token: string) => `${token}.AAAA.BBBB`],
  ])('%s', async (_name, mangle) => {
    await expectRefused(mangle(signedToken(ecKey, claims())), 'malformed');
  });

  test.each([
    ['not three parts', 'abc.def'],
    ['not a JWT at all', 'hello'],
    ['bad base64url', `${base64url('{"alg":"ES256"}')}.pay+load/.sig`],
    [
      'bad JSON in the header',
      `${base64url('{"alg":"ES256"')}.${base64url(JSON.stringify(claims()))}.${base64url('sig')}`,
    ],
    [
      'a header that is not an object',
      `${base64url('["ES256"]')}.${base64url(JSON.stringify(claims()))}.${base64url('sig')}`,
    ],
  ])('malformed: %s', async (_name, token) => {
    await expectRefused(token, 'malformed');
  });

  test('malformed: duplicate member names in the header (second alg would win in some parsers)', async () => {
    const header = '{"alg":"ES256","kid":"ec-1","alg":"none"}';
    await expectRefused(
      buildToken(header, claims(), (input) => signatureFor('ES256', ecKey.privateKey, input)),
      'malformed',
    );
  });

  test('malformed: a token longer than the bearer limit', async () => {
    await expectRefused(signedToken(ecKey, claims({ padding: 'x'.repeat(9000) })), 'malformed');
  });
});

describe('token outside the Authorization header', () => {
  async function expectMissing(build: (test: request.Test) => request.Test, reason = 'missing_token'): Promise<void> {
    const before = await counterValue(svc, 'provsec_auth_failures_total', { reason });
    const res = await api.send('get', SECRET_PATH, build);
    expectGenericUnauthorized(res);
    expect(res.text).not.toContain(SECRET);
    expect(await counterValue(svc, 'provsec_auth_failures_total', { reason })).toBe(before + 1);
  }

  test('in the query string (access_token)', async () => {
    const token = signedToken(ecKey, claims());
    await expectMissing((test) => test.query({ access_token: token }));
  });

  test('in a cookie', async () => {
    const token = signedToken(ecKey, claims());
    await expectMissing((test) => test.set('Cookie', `access_token=${token}; token=${token}`));
  });

  test('in the body of a POST', async () => {
    const token = signedToken(ecKey, claims({ sub: MANAGEMENT }));
    const res = await api.send('post', '/v1/device-groups', (test) =>
      test.send({ access_token: token, id: 'attack.body', provisionSecret: 'x' }),
    );
    expectGenericUnauthorized(res);
  });

  test.each([
    ['another scheme (Token)', 'Token'],
    ['Basic', 'Basic'],
    ['Bearer with two spaces', 'Bearer '],
  ])('Authorization with %s', async (_name, scheme) => {
    const token = signedToken(ecKey, claims());
    await expectMissing((test) => test.set('Authorization', `${scheme} ${token}`), 'malformed');
  });

  test('no Authorization header at all', async () => {
    await expectMissing((test) => test);
  });
});

describe('a refused token changes nothing', () => {
  test('create, rotate and delete with a forged management token are 401 and leave every row as it was', async () => {
    const forged = signedToken(attackerEc, claims({ sub: MANAGEMENT }));
    const before = await snapshotGroups(svc.pool);
    expectGenericUnauthorized(
      await api.post('/v1/device-groups', { id: 'attack.new', provisionSecret: 'forged' }, { token: forged }),
    );
    expectGenericUnauthorized(await api.put(SECRET_PATH, { provisionSecret: 'forged' }, { token: forged }));
    expectGenericUnauthorized(await api.delete(groupPath(GROUP), { token: forged }));
    expectGenericUnauthorized(await api.get('/v1/audit-events', { token: forged }));
    expectGenericUnauthorized(await api.get('/v1/keys', { token: forged }));
    expect(await snapshotGroups(svc.pool)).toEqual(before);
  });

  test('an unknown /v1 path is also 401 without a token (no route discovery before authentication)', async () => {
    expectGenericUnauthorized(await api.get('/v1/not-a-route'));
  });
});
