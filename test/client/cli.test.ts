/**
 * provsec-secret against the real running service (and a proxy in front of it for HTTPS and for
 * faults and attacks): keygen, encrypted reads, the checks on every answer, retries and exit codes.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, type JWK } from 'jose';
import { runCli } from '../../src/client';
import { apiFor, type ApiClient } from '../api/support/api-client';
import { auditRowsFor } from '../api/support/database';
import { describeFindings, LeakEvidence } from '../support/leak-sweep';
import { CertificateFiles, TestCertificateAuthority } from '../support/test-pki';
import { startTestService, TEST_POLICY, type TestService } from '../support/test-service';
import { startFrontProxy, type FrontProxy } from './support/front-proxy';

const KEYED = 'cert-worker-keyed';
const PLAIN = 'cert-worker-plain';
const FLEET_ONLY = 'fleet-a-worker';
const SECRETS: Record<string, string> = {
  'client.a': 'CLIENT-secret-a-61c0ffee',
  'client.b': 'CLIENT-secret-b-72beef00',
};

const dir = mkdtempSync(join(tmpdir(), 'provsec-client-'));
const keyFile = join(dir, 'worker-key.jwk');
const otherKeyFile = join(dir, 'other-key.jwk');
const evidence = new LeakEvidence();
const stderrSeen: string[] = [];
const tokensSeen: string[] = [];

let svc: TestService;
let api: ApiClient;
let proxy: FrontProxy;
let publicJwk: JWK;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    env,
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });
  stderrSeen.push(stderr);
  return { code, stdout, stderr };
}

async function tokenFileFor(subject: string, options: { ttlSeconds?: number } = {}): Promise<string> {
  const token = await svc.token(subject, options);
  tokensSeen.push(token);
  const file = join(dir, `token-${tokensSeen.length}`);
  writeFileSync(file, `${token}\n`);
  return file;
}

/** The run ended with `code`, printed nothing on stdout, and said something matching `stderr`. */
function expectExit(run: Run, code: number, stderr?: RegExp): void {
  expect({ code: run.code, stdout: run.stdout }).toEqual({ code, stdout: '' });
  if (stderr !== undefined) expect(run.stderr).toMatch(stderr);
}

/** A read of `groupId` through the proxy as `subject`, with the worker key unless told otherwise. */
async function get(groupId: string, options: { as?: string; key?: string | null; extra?: string[] } = {}) {
  const tokenFile = await tokenFileFor(options.as ?? KEYED);
  const env: Record<string, string> = { PROVSEC_URL: proxy.url, PROVSEC_TOKEN_FILE: tokenFile };
  if (options.key !== null) env.PROVSEC_RECIPIENT_KEY_FILE = options.key ?? keyFile;
  return cli(['get', groupId, '--timeout', '5', ...(options.extra ?? [])], env);
}

/** A POST over https trusting `ca` (supertest's client does not take a CA); resolves to the status. */
function httpsPost(base: string, path: string, options: { body: unknown; token: string; ca: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(path, base),
      {
        method: 'POST',
        ca: options.ca,
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(options.body));
  });
}

beforeAll(async () => {
  // The worker's key is made the way an operator would: keygen, then the public JWK into the policy.
  const keygen = await cli(['keygen', '--kid', 'cert-worker-2026-12', '--output', keyFile]);
  expect(keygen.code).toBe(0);
  publicJwk = JSON.parse(keygen.stdout) as JWK;
  expect((await cli(['keygen', '--kid', 'other', '--output', otherKeyFile])).code).toBe(0);
  svc = await startTestService({
    policy: {
      rules: [
        ...TEST_POLICY.rules,
        { subject: KEYED, permissions: ['provision-secret:read'], recipientKey: publicJwk },
        { subject: PLAIN, permissions: ['provision-secret:read'] },
      ],
    },
  });
  api = apiFor(svc);
  for (const [id, secret] of Object.entries(SECRETS)) {
    evidence.storedSecret(id, secret);
    await api.post('/v1/device-groups', { id, provisionSecret: secret });
  }
  proxy = await startFrontProxy(svc.url);
});
afterEach(() => proxy.reset());
afterAll(async () => {
  await proxy.close();
  await svc.stop();
});

describe('keygen', () => {
  test('writes a 0600 P-256 private JWK and prints the public JWK (no "d") with its kid', () => {
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const privateJwk = JSON.parse(readFileSync(keyFile, 'utf8')) as JWK;
    expect(privateJwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: 'cert-worker-2026-12' });
    expect(typeof privateJwk.d).toBe('string');
    expect(publicJwk).toEqual({
      kty: 'EC',
      crv: 'P-256',
      x: privateJwk.x,
      y: privateJwk.y,
      kid: 'cert-worker-2026-12',
      alg: 'ECDH-ES+A256KW',
      use: 'enc',
    });
  });

  test('never overwrites an existing file (exit 2, the key unchanged)', async () => {
    const before = readFileSync(keyFile, 'utf8');
    const run = await cli(['keygen', '--kid', 'again', '--output', keyFile]);
    expectExit(run, 2, /already exists; keygen never overwrites/);
    expect(readFileSync(keyFile, 'utf8')).toBe(before);
  });
});

describe('get, encrypted to the registered key', () => {
  test('prints the secret alone, without a newline, from a JWE answer; the audit row names the kid', async () => {
    const run = await get('client.a');
    expect(run).toEqual({ code: 0, stdout: SECRETS['client.a'], stderr: '' });
    const [answer] = proxy.answers.slice(-1);
    expect(decodeProtectedHeader(answer?.body ?? '')).toMatchObject({
      kid: 'cert-worker-2026-12',
      'provsec.group': 'client.a',
      'provsec.ver': 1,
    });
    const rows = await auditRowsFor(svc.pool, { group_id: 'client.a', actor_subject: KEYED });
    expect(rows.at(-1)).toMatchObject({ outcome: 'ok', secret_delivery: 'jwe', recipient_kid: 'cert-worker-2026-12' });
  });

  test('--output writes the secret to a new 0600 file and prints nothing', async () => {
    const output = join(dir, 'secret-out');
    const run = await get('client.b', { extra: ['--output', output] });
    expect(run).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readFileSync(output, 'utf8')).toBe(SECRETS['client.b']);
    expect(statSync(output).mode & 0o777).toBe(0o600);
  });

  test('a key that is not registered is refused by the service (403, exit 3)', async () => {
    const run = await get('client.a', { key: otherKeyFile });
    expectExit(run, 3, /Recipient Key Not Registered/);
  });

  test('an answer encrypted to the registered key does not open with another key, even one claiming its kid: exit 6', async () => {
    await get('client.a');
    const registeredKeysJwe = proxy.answers.at(-1)?.body ?? '';
    const impostor = join(dir, 'impostor.jwk');
    const other = JSON.parse(readFileSync(otherKeyFile, 'utf8')) as JWK;
    writeFileSync(impostor, JSON.stringify({ ...other, kid: 'cert-worker-2026-12' }));
    proxy.intercept(() => ({ status: 200, headers: { 'content-type': 'application/jose' }, body: registeredKeysJwe }));
    expectExit(await get('client.a', { key: impostor }), 6, /does not decrypt with the configured key/);
  });

  test('a tampered JWE (one ciphertext byte changed) is refused with exit 6', async () => {
    proxy.rewrite((_path, answer) => {
      const parts = answer.body.split('.');
      const ciphertext = Buffer.from(parts[3] ?? '', 'base64url');
      ciphertext[0] = (ciphertext[0] ?? 0) ^ 1;
      parts[3] = ciphertext.toString('base64url');
      return { ...answer, body: parts.join('.') };
    });
    expectExit(await get('client.a'), 6, /does not decrypt/);
  });

  test("a swapped answer (another group's JWE) is refused with exit 6 before decrypting", async () => {
    await get('client.b');
    const otherGroupsJwe = proxy.answers.at(-1)?.body ?? '';
    proxy.rewrite((_path, answer) => ({ ...answer, body: otherGroupsJwe }));
    expectExit(await get('client.a'), 6, /for another group \("client\.b"\), not client\.a/);
  });

  test('a swapped answer whose header was rewritten to name our group fails authentication: exit 6', async () => {
    await get('client.b');
    const [header = '', ...rest] = (proxy.answers.at(-1)?.body ?? '').split('.');
    const claims = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, 'provsec.group': 'client.a' })).toString('base64url');
    proxy.rewrite((_path, answer) => ({ ...answer, body: [forged, ...rest].join('.') }));
    expectExit(await get('client.a'), 6, /does not decrypt/);
  });

  test('a plaintext answer while a key is configured is a downgrade: exit 6, nothing printed', async () => {
    // The service answers this identity in JSON (its rule has no key), as a stripped policy would.
    const run = await get('client.a', { as: PLAIN });
    expectExit(run, 6, /downgrade/);
  });

  test('without a configured key, a keyless identity gets the JSON answer; a keyed one is told to configure its key (exit 2)', async () => {
    expect(await get('client.a', { as: PLAIN, key: null })).toEqual({
      code: 0,
      stdout: SECRETS['client.a'],
      stderr: '',
    });
    expectExit(await get('client.a', { key: null }), 2, /PROVSEC_RECIPIENT_KEY_FILE/);
  });
});

describe('exit codes and retries', () => {
  test('404 is exit 4, 403 exit 3, an expired token exit 3, each after exactly one request', async () => {
    expectExit(await get('client.none'), 4, /404/);
    expect(proxy.requests()).toBe(1);
    proxy.reset();
    expectExit(await get('client.a', { as: FLEET_ONLY, key: null }), 3, /403/);
    expect(proxy.requests()).toBe(1);
    proxy.reset();
    const expired = await tokenFileFor(KEYED, { ttlSeconds: -60 });
    const run = await cli(['get', 'client.a'], {
      PROVSEC_URL: proxy.url,
      PROVSEC_TOKEN_FILE: expired,
      PROVSEC_RECIPIENT_KEY_FILE: keyFile,
    });
    expectExit(run, 3, /401/);
    expect(proxy.requests()).toBe(1);
  });

  test('a 401 is never retried, whatever Retry-After says', async () => {
    proxy.intercept(() => ({ status: 401, headers: { 'retry-after': '0' }, body: '' }));
    expectExit(await get('client.a'), 3);
    expect(proxy.requests()).toBe(1);
  });

  test('503 with Retry-After is retried after that delay plus at most 50% jitter, then succeeds', async () => {
    proxy.intercept((_path, n) =>
      n <= 2
        ? { status: 503, headers: { 'retry-after': '1', 'content-type': 'application/problem+json' }, body: '{}' }
        : undefined,
    );
    const run = await get('client.a');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(SECRETS['client.a']);
    expect(proxy.requests()).toBe(3);
    const delays = [...run.stderr.matchAll(/answered 503; retrying in (\d+) ms/g)].map((match) => Number(match[1]));
    expect(delays).toHaveLength(2);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(1000);
      expect(delay).toBeLessThanOrEqual(1500);
    }
  });

  test('503 until the deadline: exit 5, and no retry is started that would end past --timeout', async () => {
    proxy.intercept(() => ({ status: 503, headers: { 'retry-after': '1' }, body: '' }));
    // Each wait is 1000-1500 ms (Retry-After 1 plus up to 50% jitter). With a 1.9 s deadline the first
    // retry always fits (<= 1.5 s plus one request) and a second never does (>= 2 s): two attempts,
    // whatever the jitter draws. (At 2.4 s, two short draws fitted a third attempt.)
    const run = await get('client.a', { extra: ['--timeout', '1.9'] });
    expectExit(run, 5, /giving up after 2 attempts/);
    expect(proxy.requests()).toBe(2);
  });

  test('the token file is read again for every call: a replaced token takes effect on the next read', async () => {
    const tokenFile = join(dir, 'rotating-token');
    const env = { PROVSEC_URL: proxy.url, PROVSEC_TOKEN_FILE: tokenFile, PROVSEC_RECIPIENT_KEY_FILE: keyFile };
    writeFileSync(tokenFile, await svc.token(KEYED));
    expect((await cli(['get', 'client.a'], env)).code).toBe(0);
    writeFileSync(tokenFile, await svc.token(KEYED, { ttlSeconds: -60 }));
    expect((await cli(['get', 'client.a'], env)).code).toBe(3);
    writeFileSync(tokenFile, await svc.token(KEYED));
    expect((await cli(['get', 'client.a'], env)).code).toBe(0);
  });

  test('usage and configuration mistakes are exit 2', async () => {
    expect((await cli([])).code).toBe(2);
    expect((await cli(['get'])).code).toBe(2);
    expect((await cli(['get', 'client.a'], { PROVSEC_URL: proxy.url })).code).toBe(2);
    const tokenFile = await tokenFileFor(KEYED);
    expect((await cli(['get', 'client.a', '--token-file', join(dir, 'missing')], {})).code).toBe(2);
    expect((await cli(['get', 'client.a', '--timeout', 'soon'], { PROVSEC_TOKEN_FILE: tokenFile })).code).toBe(2);
    const publicOnly = join(dir, 'public.jwk');
    writeFileSync(publicOnly, JSON.stringify(publicJwk));
    expectExit(
      await cli(['get', 'client.a'], {
        PROVSEC_URL: proxy.url,
        PROVSEC_TOKEN_FILE: tokenFile,
        PROVSEC_RECIPIENT_KEY_FILE: publicOnly,
      }),
      2,
      /holds a public JWK; the client needs the private key/,
    );
  });
});

describe('a 429 from a low rate limit', () => {
  let limited: TestService;
  beforeAll(async () => {
    limited = await startTestService({ env: { SECRET_READ_RATE_LIMIT_PER_MINUTE: '1' } });
    await apiFor(limited).post('/v1/device-groups', { id: 'limited.a', provisionSecret: 'LIMITED-secret-1' });
    evidence.storedSecret('limited.a', 'LIMITED-secret-1');
  });
  afterAll(() => limited.stop());

  test("is retried only if the server's Retry-After fits the deadline: here it does not, so exit 5 after one 429", async () => {
    const tokenFile = join(dir, 'limited-token');
    writeFileSync(tokenFile, await limited.token('system:serviceaccount:provisioning:cert-worker'));
    const env = { PROVSEC_URL: limited.url, PROVSEC_TOKEN_FILE: tokenFile };
    expect(await cli(['get', 'limited.a'], env)).toEqual({ code: 0, stdout: 'LIMITED-secret-1', stderr: '' });
    const run = await cli(['get', 'limited.a', '--timeout', '3'], env);
    expectExit(run, 5, /answered 429; giving up after 1 attempt/);
    const refusals = await auditRowsFor(limited.pool, { group_id: 'limited.a', action: 'provision-secret.read' });
    expect(refusals.filter((row) => row.reason === 'rate_limited')).toHaveLength(1);
  });
});

describe('https against the service with its own certificate (TLS_CERT_FILE)', () => {
  const ca = new TestCertificateAuthority();
  const otherCa = new TestCertificateAuthority('another CA');
  const files = new CertificateFiles(ca);
  const otherCaFile = join(dir, 'other-ca.crt');
  let tlsSvc: TestService;

  beforeAll(async () => {
    files.replaceByRename(ca.issue());
    writeFileSync(otherCaFile, otherCa.certificatePem);
    tlsSvc = await startTestService({
      policy: {
        rules: [
          { subject: 'management-api', permissions: ['device-groups:write'] },
          { subject: KEYED, permissions: ['provision-secret:read'], recipientKey: publicJwk },
        ],
      },
      env: { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, AUTH_REQUIRE_RECIPIENT_KEY: 'true' },
    });
    const created = await httpsPost(tlsSvc.url, '/v1/device-groups', {
      body: { id: 'tls.a', provisionSecret: 'TLS-secret-9d9d' },
      token: await tlsSvc.token('management-api'),
      ca: ca.certificatePem,
    });
    expect(created).toBe(201);
    evidence.storedSecret('tls.a', 'TLS-secret-9d9d');
  });
  afterAll(() => tlsSvc.stop());

  const tlsGet = async (extra: string[]) => {
    const tokenFile = join(dir, `tls-token-${tokensSeen.length}`);
    const token = await tlsSvc.token(KEYED);
    tokensSeen.push(token);
    writeFileSync(tokenFile, token);
    return cli(['get', 'tls.a', ...extra], {
      PROVSEC_URL: tlsSvc.url,
      PROVSEC_TOKEN_FILE: tokenFile,
      PROVSEC_RECIPIENT_KEY_FILE: keyFile,
    });
  };

  test('trusts exactly the CA in PROVSEC_CA_FILE', async () => {
    expect(tlsSvc.url).toMatch(/^https:/);
    expect(await tlsGet(['--ca-file', files.caFile])).toEqual({ code: 0, stdout: 'TLS-secret-9d9d', stderr: '' });
  });

  test('a certificate from another CA, or any without a CA file (not in the system list), is exit 2 and never retried', async () => {
    expectExit(await tlsGet(['--ca-file', otherCaFile]), 2, /not trusted/);
    expectExit(await tlsGet([]), 2, /not trusted/);
  });

  test('a CA file with an http URL is a configuration error', async () => {
    const run = await cli(['get', 'client.a', '--ca-file', files.caFile], {
      PROVSEC_URL: proxy.url,
      PROVSEC_TOKEN_FILE: await tokenFileFor(KEYED),
    });
    expectExit(run, 2, /only applies to an https/);
  });
});

test('no error message carried a secret or a token, and no response, log or row carried a secret', async () => {
  const allStderr = stderrSeen.join('\n');
  for (const secret of [...Object.values(SECRETS), 'LIMITED-secret-1']) expect(allStderr).not.toContain(secret);
  for (const token of tokensSeen) expect(allStderr).not.toContain(token.split('.')[2]);
  for (const answer of proxy.answers) evidence.response('GET', answer.path, answer.status, answer.body);
  evidence.logs('service', () => svc.logs());
  evidence.logs('client stderr', () => allStderr);
  const report = await evidence.sweep([{ label: 'service', pool: svc.pool }]);
  expect(describeFindings(report.findings)).toBe('');
  expect(report.counts.responses).toBeGreaterThan(10);
});
