/** Key sets from a URL (cache, rate-limited refresh, failures that are ours) and from a file (checked at start-up). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthConfigError } from '../../src/auth/errors';
import { createTokenVerifier, type TokenVerifier } from '../../src/auth/token-verifier';
import type { JwksSource } from '../../src/auth/key-sets';
import { freePort } from '../support/free-port';
import { startJwksServer, type JwksServer } from './support/jwks-server';
import { refusalOf } from './support/refusal';
import { keySetOf, makeKey, signedToken, validClaims, type TestKey } from './support/test-keys';

const ISSUER = 'https://issuer.test';

let server: JwksServer;
let currentKey: TestKey;
let folder: string;

beforeAll(async () => {
  server = await startJwksServer();
  currentKey = makeKey('ES256', 'current');
  folder = await mkdtemp(join(tmpdir(), 'provsec-jwks-'));
});

afterAll(async () => {
  await server.close();
  await rm(folder, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const verifierFor = (jwks: JwksSource): TokenVerifier => createTokenVerifier({ issuers: [{ issuer: ISSUER, jwks }] });

describe('remote key set', () => {
  test('refresh on an unknown kid is rate-limited: a flood costs at most one fetch per cooldown', async () => {
    const path = '/rate-limited/jwks';
    server.serve(path, { body: keySetOf(currentKey) });
    const cooldownMs = 400;
    const verifier = verifierFor({ kind: 'url', url: `${server.origin}${path}`, cooldownMs });
    const unknownKidToken = (index: number) =>
      signedToken({ ...currentKey, kid: `unknown-${index}` }, validClaims(ISSUER));

    await verifier.verify(signedToken(currentKey, validClaims(ISSUER)));
    expect(server.hits(path)).toBe(1);

    // 200 made-up kids, concurrently and back to back, over ~1.3 cooldowns.
    const started = Date.now();
    let sent = 0;
    while (Date.now() - started < cooldownMs * 1.3) {
      const reasons = await Promise.all(
        Array.from({ length: 20 }, () =>
          refusalOf(verifier.verify(unknownKidToken(sent++))).then((error) => error.reason),
        ),
      );
      expect(new Set(reasons)).toEqual(new Set(['unknown_key']));
      await sleep(25);
    }
    const elapsedMs = Date.now() - started;
    expect(sent).toBeGreaterThanOrEqual(200);
    // First fetch, then at most one refetch per elapsed cooldown.
    expect(server.hits(path)).toBeLessThanOrEqual(1 + Math.ceil(elapsedMs / cooldownMs));
    expect(server.hits(path)).toBeGreaterThanOrEqual(2);
  });

  test('a rotated-in key is picked up on its first token once the cooldown has passed', async () => {
    const path = '/rotation/jwks';
    server.serve(path, { body: keySetOf(currentKey) });
    const verifier = verifierFor({ kind: 'url', url: `${server.origin}${path}`, cooldownMs: 200 });
    await verifier.verify(signedToken(currentKey, validClaims(ISSUER)));

    const nextKey = makeKey('EdDSA', 'next');
    server.serve(path, { body: keySetOf(currentKey, nextKey) });
    // Inside the cooldown the new kid is still unknown: the price of the rate limit.
    expect((await refusalOf(verifier.verify(signedToken(nextKey, validClaims(ISSUER))))).reason).toBe('unknown_key');
    await sleep(250);
    await expect(verifier.verify(signedToken(nextKey, validClaims(ISSUER)))).resolves.toMatchObject({ issuer: ISSUER });
    expect(server.hits(path)).toBe(2);
  });

  test('concurrent first requests share one fetch', async () => {
    const path = '/concurrent/jwks';
    server.serve(path, { body: keySetOf(currentKey), delayMs: 50 });
    const verifier = verifierFor({ kind: 'url', url: `${server.origin}${path}` });
    await Promise.all(Array.from({ length: 25 }, () => verifier.verify(signedToken(currentKey, validClaims(ISSUER)))));
    expect(server.hits(path)).toBe(1);
  });

  const failures: Array<[string, () => string | Promise<string>]> = [
    ['the server answers 500', () => (server.serve('/500', { status: 500, body: {} }), `${server.origin}/500`)],
    ['the server answers 404', () => `${server.origin}/never-served`],
    ['the body is not JSON', () => (server.serve('/html', { body: '<html>' }), `${server.origin}/html`)],
    [
      'the body is not a key set',
      () => (server.serve('/not-jwks', { body: { keys: 'nope' } }), `${server.origin}/not-jwks`),
    ],
    [
      'the key set holds a private key',
      () => {
        const exposed = makeKey('ES256', 'current');
        const privateJwk = {
          ...(exposed.privateKey.export({ format: 'jwk' }) as object),
          kid: 'current',
          alg: 'ES256',
        };
        server.serve('/private', { body: { keys: [privateJwk] } });
        return `${server.origin}/private`;
      },
    ],
    ['nothing listens on the port', async () => `http://127.0.0.1:${await freePort()}/jwks`],
  ];
  test.each(failures)('when %s, the token is refused as jwks_unavailable, a fault of ours', async (_name, urlOf) => {
    const verifier = verifierFor({ kind: 'url', url: await urlOf() });
    const refusal = await refusalOf(verifier.verify(signedToken(currentKey, validClaims(ISSUER))));
    expect(refusal.reason).toBe('jwks_unavailable');
    expect(refusal.serverFault).toBe(true);
  });

  test('a slow key set server is abandoned after the fetch timeout', async () => {
    server.serve('/slow', { body: keySetOf(currentKey), delayMs: 3000 });
    const verifier = verifierFor({ kind: 'url', url: `${server.origin}/slow`, timeoutMs: 200 });
    const started = Date.now();
    const refusal = await refusalOf(verifier.verify(signedToken(currentKey, validClaims(ISSUER))));
    expect(refusal.reason).toBe('jwks_unavailable');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  test('the bearer token file is re-read for every fetch (projected tokens rotate)', async () => {
    const path = '/openid/v1/jwks-authenticated';
    server.serve(path, { body: keySetOf(currentKey) });
    const tokenFile = join(folder, 'token');
    await writeFile(tokenFile, 'first-projected-token\n');
    const verifier = verifierFor({
      kind: 'url',
      url: `${server.origin}${path}`,
      cooldownMs: 100,
      bearerTokenFile: tokenFile,
    });
    await verifier.verify(signedToken(currentKey, validClaims(ISSUER)));
    expect(server.lastHeaders(path)?.authorization).toBe('Bearer first-projected-token');
    expect(server.lastHeaders(path)?.['user-agent']).toBe('provsec-jwks-client');

    await writeFile(tokenFile, 'second-projected-token\n');
    await sleep(150);
    await refusalOf(verifier.verify(signedToken({ ...currentKey, kid: 'unknown' }, validClaims(ISSUER))));
    expect(server.hits(path)).toBe(2);
    expect(server.lastHeaders(path)?.authorization).toBe('Bearer second-projected-token');
  });

  test.each([
    ['plain http to a remote host', { url: 'http://issuer.example/jwks' }, /must use https/],
    ['a non-http scheme', { url: 'file:///etc/jwks.json' }, /must use https/],
    ['not a URL', { url: 'issuer.example/jwks' }, /not a URL/],
    ['a zero cooldown (unlimited refresh)', { url: 'https://issuer.example/jwks', cooldownMs: 0 }, /cooldown/],
    ['a ten-minute fetch timeout', { url: 'https://issuer.example/jwks', timeoutMs: 600_000 }, /timeout/],
    [
      'a cache age below the cooldown',
      { url: 'https://issuer.example/jwks', cooldownMs: 60_000, cacheMaxAgeMs: 1000 },
      /cache max age/,
    ],
  ])('%s is refused at start-up', (_name, source, message) => {
    expect(() => verifierFor({ kind: 'url', ...source })).toThrow(AuthConfigError);
    expect(() => verifierFor({ kind: 'url', ...source })).toThrow(message);
  });

  test('an https URL is accepted without any fetch at start-up', () => {
    expect(() =>
      verifierFor({ kind: 'url', url: 'https://kubernetes.default.svc.cluster.local/openid/v1/jwks' }),
    ).not.toThrow();
  });
});

describe('key set file', () => {
  const writeKeySet = async (name: string, content: unknown) => {
    const path = join(folder, name);
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };

  test('a file of public keys is read once at start-up and verifies tokens', async () => {
    const path = await writeKeySet('good.json', keySetOf(currentKey));
    const verifier = verifierFor({ kind: 'file', path });
    await rm(path);
    await expect(verifier.verify(signedToken(currentKey, validClaims(ISSUER)))).resolves.toMatchObject({
      issuer: ISSUER,
    });
  });

  const badFiles: Array<[string, () => unknown, RegExp]> = [
    ['not JSON', () => '{"keys": [', /is not JSON/],
    ['no keys array', () => ({ kty: 'EC' }), /non-empty "keys" array/],
    ['an empty keys array', () => ({ keys: [] }), /non-empty "keys" array/],
    ['a symmetric key', () => ({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }] }), /keys\[0\] has kty oct/],
    [
      'a private key',
      () => ({ keys: [{ ...(currentKey.privateKey.export({ format: 'jwk' }) as object), kid: 'x' }] }),
      /keys\[0\] holds private key material/,
    ],
    [
      'a broken public key',
      () => ({ keys: [currentKey.publicJwk, { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }] }),
      /keys\[1\] is not a valid public key/,
    ],
  ];
  test.each(badFiles)(
    'a file with %s is refused at start-up with a message naming the problem',
    async (_name, content, message) => {
      const path = await writeKeySet('bad.json', content());
      expect(() => verifierFor({ kind: 'file', path })).toThrow(AuthConfigError);
      expect(() => verifierFor({ kind: 'file', path })).toThrow(message);
    },
  );

  test('a missing file is refused at start-up naming the path', () => {
    const path = join(folder, 'missing.json');
    expect(() => verifierFor({ kind: 'file', path })).toThrow(`cannot read JWKS file ${path} (ENOENT)`);
  });
});
