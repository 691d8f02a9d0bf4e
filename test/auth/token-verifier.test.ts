/** The verifier's accepting side and its configuration: algorithms, issuers, Kubernetes tokens, limits. */
import { SignJWT } from 'jose';
import { AuthConfigError } from '../../src/auth/errors';
import {
  createTokenVerifier,
  type TokenVerifierOptions,
  type TrustedIssuerOptions,
} from '../../src/auth/token-verifier';
import { startJwksServer, type JwksServer } from './support/jwks-server';
import { refusalOf } from './support/refusal';
import { keySetOf, makeKey, nowSeconds, signedToken, validClaims, type TestKey } from './support/test-keys';

const ISSUER = 'https://issuer.test';
const KUBERNETES_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/** Who validClaims(ISSUER) names: an accepted token must come back as exactly this caller. */
const CERT_WORKER_PRINCIPAL = { issuer: ISSUER, subject: 'system:serviceaccount:provisioning:cert-worker' };

let rsaKey: TestKey;
let ecKey: TestKey;
let edKey: TestKey;
let server: JwksServer;

beforeAll(async () => {
  rsaKey = makeKey('RS256', 'rsa-1');
  ecKey = makeKey('ES256', 'ec-1');
  edKey = makeKey('EdDSA', 'ed-1');
  server = await startJwksServer();
});

afterAll(async () => {
  await server.close();
});

const inlineVerifier = (...keys: TestKey[]) =>
  createTokenVerifier({ issuers: [{ issuer: ISSUER, jwks: { kind: 'inline', keySet: keySetOf(...keys) } }] });

describe('happy path', () => {
  test.each(['RS256', 'ES256', 'EdDSA'] as const)(
    'a %s token signed by jose SignJWT verifies to its principal',
    async (alg) => {
      const key = { RS256: rsaKey, ES256: ecKey, EdDSA: edKey }[alg];
      const expiresAt = nowSeconds() + 600;
      const token = await new SignJWT({})
        .setProtectedHeader({ alg, kid: key.kid })
        .setIssuer(ISSUER)
        .setAudience('provsec')
        .setSubject('cert-worker-7')
        .setIssuedAt()
        .setExpirationTime(expiresAt)
        .sign(key.privateKey);
      const principal = await inlineVerifier(rsaKey, ecKey, edKey).verify(token);
      expect(principal).toEqual({ issuer: ISSUER, subject: 'cert-worker-7', expiresAt: new Date(expiresAt * 1000) });
      expect(Object.isFrozen(principal)).toBe(true);
    },
  );

  test('a token without kid verifies when the key set holds one key of its type', async () => {
    const token = signedToken(edKey, validClaims(ISSUER), { kid: undefined });
    await expect(inlineVerifier(rsaKey, edKey).verify(token)).resolves.toMatchObject({ issuer: ISSUER });
  });

  test('a token without kid is refused when two keys of its type could match', async () => {
    const second = makeKey('EdDSA', 'ed-2');
    const token = signedToken(edKey, validClaims(ISSUER), { kid: undefined });
    expect((await refusalOf(inlineVerifier(edKey, second).verify(token))).reason).toBe('unknown_key');
  });

  test('aud as an array that includes provsec is accepted', async () => {
    await expect(
      inlineVerifier(rsaKey).verify(signedToken(rsaKey, validClaims(ISSUER, { aud: ['vault', 'provsec'] }))),
    ).resolves.toMatchObject(CERT_WORKER_PRINCIPAL);
  });

  test('a configured custom audience is required instead of provsec', async () => {
    const verifier = createTokenVerifier({
      issuers: [
        { issuer: ISSUER, audience: ['provsec.prod.example'], jwks: { kind: 'inline', keySet: keySetOf(rsaKey) } },
      ],
    });
    await expect(
      verifier.verify(signedToken(rsaKey, validClaims(ISSUER, { aud: 'provsec.prod.example' }))),
    ).resolves.toMatchObject(CERT_WORKER_PRINCIPAL);
    expect((await refusalOf(verifier.verify(signedToken(rsaKey, validClaims(ISSUER))))).reason).toBe('wrong_audience');
  });
});

describe('time limits', () => {
  test('within the 30 s clock tolerance, a just-expired token, a just-future nbf and iat are accepted', async () => {
    const now = nowSeconds();
    const verifier = inlineVerifier(rsaKey);
    await expect(
      verifier.verify(signedToken(rsaKey, validClaims(ISSUER, { iat: now - 300, exp: now - 20 }))),
    ).resolves.toMatchObject(CERT_WORKER_PRINCIPAL);
    await expect(verifier.verify(signedToken(rsaKey, validClaims(ISSUER, { nbf: now + 20 })))).resolves.toMatchObject(
      CERT_WORKER_PRINCIPAL,
    );
    await expect(
      verifier.verify(signedToken(rsaKey, validClaims(ISSUER, { iat: now + 20, exp: now + 300 }))),
    ).resolves.toMatchObject(CERT_WORKER_PRINCIPAL);
  });

  test('a lifetime of exactly the maximum is accepted, one second more is refused', async () => {
    const now = nowSeconds();
    const verifier = inlineVerifier(rsaKey);
    await expect(
      verifier.verify(signedToken(rsaKey, validClaims(ISSUER, { iat: now, exp: now + 3600 }))),
    ).resolves.toMatchObject(CERT_WORKER_PRINCIPAL);
    expect(
      (await refusalOf(verifier.verify(signedToken(rsaKey, validClaims(ISSUER, { iat: now, exp: now + 3601 })))))
        .reason,
    ).toBe('lifetime_too_long');
  });

  test('maxTokenLifetimeSeconds lowers the limit', async () => {
    const now = nowSeconds();
    const verifier = createTokenVerifier({
      maxTokenLifetimeSeconds: 600,
      issuers: [{ issuer: ISSUER, jwks: { kind: 'inline', keySet: keySetOf(rsaKey) } }],
    });
    expect(
      (await refusalOf(verifier.verify(signedToken(rsaKey, validClaims(ISSUER, { iat: now, exp: now + 601 }))))).reason,
    ).toBe('lifetime_too_long');
  });

  test('an injected clock decides expiry', async () => {
    const now = nowSeconds();
    const token = signedToken(rsaKey, validClaims(ISSUER, { iat: now, exp: now + 300 }));
    const later = createTokenVerifier({
      now: () => new Date((now + 400) * 1000),
      issuers: [{ issuer: ISSUER, jwks: { kind: 'inline', keySet: keySetOf(rsaKey) } }],
    });
    expect((await refusalOf(later.verify(token))).reason).toBe('expired');
  });

  test('missing iat and missing sub are refused', async () => {
    const { iat: _iat, ...withoutIat } = validClaims(ISSUER);
    const { sub: _sub, ...withoutSub } = validClaims(ISSUER);
    const verifier = inlineVerifier(rsaKey);
    expect(await refusalOf(verifier.verify(signedToken(rsaKey, withoutIat)))).toMatchObject({
      reason: 'missing_claim',
      detail: 'iat',
    });
    expect(await refusalOf(verifier.verify(signedToken(rsaKey, withoutSub)))).toMatchObject({
      reason: 'missing_claim',
      detail: 'sub',
    });
  });

  test('a sub that is empty, not a string, or has control characters is refused', async () => {
    const verifier = inlineVerifier(rsaKey);
    for (const sub of ['', 42, 'cert-worker\nlevel=admin']) {
      expect(await refusalOf(verifier.verify(signedToken(rsaKey, validClaims(ISSUER, { sub }))))).toMatchObject({
        reason: 'invalid_claim',
      });
    }
  });
});

describe('several trusted issuers', () => {
  test('each issuer token verifies against its own key set; the principal names the issuer', async () => {
    server.serve('/b/jwks', { body: keySetOf(ecKey, edKey) });
    const verifier = createTokenVerifier({
      issuers: [
        { issuer: 'https://a.test', jwks: { kind: 'inline', keySet: keySetOf(rsaKey) } },
        { issuer: 'https://b.test', audience: 'provsec-b', jwks: { kind: 'url', url: `${server.origin}/b/jwks` } },
      ],
    });
    await expect(
      verifier.verify(signedToken(rsaKey, validClaims('https://a.test', { sub: 'x' }))),
    ).resolves.toMatchObject({ issuer: 'https://a.test', subject: 'x' });
    await expect(
      verifier.verify(signedToken(edKey, validClaims('https://b.test', { aud: 'provsec-b', sub: 'y' }))),
    ).resolves.toMatchObject({ issuer: 'https://b.test', subject: 'y' });
    // b's audience is b's alone: provsec is not enough for b, provsec-b not enough for a.
    expect((await refusalOf(verifier.verify(signedToken(ecKey, validClaims('https://b.test'))))).reason).toBe(
      'wrong_audience',
    );
    expect(
      (await refusalOf(verifier.verify(signedToken(rsaKey, validClaims('https://a.test', { aud: 'provsec-b' })))))
        .reason,
    ).toBe('wrong_audience');
  });
});

describe('Kubernetes projected service-account tokens', () => {
  test('an RS256 token from the issuer /openid/v1/jwks with Kubernetes claims verifies', async () => {
    // Shapes as the API server issues them: kid a key thumbprint, no typ, aud an array, a kubernetes.io claim.
    const apiServerKey = makeKey('RS256', 'Vx3CoWW0bcyqJIqzx0ojIzOPm2Pmh95YV_Av0ZTw3zQ');
    server.serve('/openid/v1/jwks', { body: keySetOf(apiServerKey) });
    const verifier = createTokenVerifier({
      issuers: [
        {
          issuer: KUBERNETES_ISSUER,
          audience: 'provsec',
          jwks: { kind: 'url', url: `${server.origin}/openid/v1/jwks` },
        },
      ],
    });
    const now = nowSeconds();
    const token = signedToken(
      apiServerKey,
      {
        aud: ['provsec'],
        exp: now + 3600,
        iat: now,
        iss: KUBERNETES_ISSUER,
        jti: '4f0bd0a9-5d0c-4e4c-9a5e-6c0f7f3b3f47',
        'kubernetes.io': {
          namespace: 'provisioning',
          node: { name: 'worker-1', uid: '0b7c3c6e-9a1f-4bd5-8d3e-0c3a1a7d2f11' },
          pod: { name: 'cert-worker-6d5f7c9b8-x2x4k', uid: '8a0a5f5e-3c7e-4b8a-9b1d-2f1f0f8d6c21' },
          serviceaccount: { name: 'cert-worker', uid: '2e9f3c1a-6b4d-4f8e-a2c7-9d5e1b0a7c33' },
          warnafter: now + 2880,
        },
        nbf: now,
        sub: 'system:serviceaccount:provisioning:cert-worker',
      },
      { typ: undefined },
    );
    await expect(verifier.verify(token)).resolves.toEqual({
      issuer: KUBERNETES_ISSUER,
      subject: 'system:serviceaccount:provisioning:cert-worker',
      expiresAt: new Date((now + 3600) * 1000),
    });
    expect(server.hits('/openid/v1/jwks')).toBe(1);
  });
});

describe('configuration is checked when the verifier is built', () => {
  const goodKeys = (): TrustedIssuerOptions['jwks'] => ({ kind: 'inline', keySet: keySetOf(rsaKey) });
  const cases: Array<[string, () => TokenVerifierOptions, RegExp]> = [
    ['no issuers', () => ({ issuers: [] }), /at least one trusted issuer/],
    [
      'the same issuer twice',
      () => ({
        issuers: [
          { issuer: ISSUER, jwks: goodKeys() },
          { issuer: ISSUER, jwks: goodKeys() },
        ],
      }),
      /listed twice/,
    ],
    ['an empty issuer', () => ({ issuers: [{ issuer: '', jwks: goodKeys() }] }), /non-empty string/],
    [
      'an issuer with surrounding spaces',
      () => ({ issuers: [{ issuer: ` ${ISSUER}`, jwks: goodKeys() }] }),
      /without surrounding spaces/,
    ],
    [
      'an empty audience list',
      () => ({ issuers: [{ issuer: ISSUER, audience: [], jwks: goodKeys() }] }),
      /audience must not be empty/,
    ],
    [
      'a zero lifetime',
      () => ({ maxTokenLifetimeSeconds: 0, issuers: [{ issuer: ISSUER, jwks: goodKeys() }] }),
      /max token lifetime/,
    ],
    [
      'a clock tolerance of an hour',
      () => ({ clockToleranceSeconds: 3600, issuers: [{ issuer: ISSUER, jwks: goodKeys() }] }),
      /clock tolerance/,
    ],
  ];
  test.each(cases)('%s is refused with AuthConfigError', (_name, options, message) => {
    expect(() => createTokenVerifier(options())).toThrow(AuthConfigError);
    expect(() => createTokenVerifier(options())).toThrow(message);
  });
});
