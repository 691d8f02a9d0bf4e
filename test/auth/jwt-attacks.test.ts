/**
 * Every attack in test/fixtures/reference/jwt-attacks.txt, one test each, against the real verifier
 * with real keys. Each must be refused with an AuthenticationError whose reason says why.
 */
// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import { createPublicKey } from 'node:crypto';
import { parseBearerHeader } from '../../src/auth/bearer-header';
import { createTokenVerifier, type TokenVerifier } from '../../src/auth/token-verifier';
import { startJwksServer, type JwksServer } from './support/jwks-server';
import { refusalOf } from './support/refusal';
import {
  base64url,
  buildToken,
  hmacSignature,
  keySetOf,
  makeKey,
  nowSeconds,
  publicKeyPem,
  signatureFor,
  signedToken,
  validClaims,
  type TestKey,
} from './support/test-keys';

const ISSUER = 'https://issuer.test';
const OTHER_ISSUER = 'https://other-issuer.test';

let rsaKey: TestKey;
let ecKey: TestKey;
let edKey: TestKey;
let otherIssuerKey: TestKey;
let attackerRsaKey: TestKey;
let attackerEcKey: TestKey;
let server: JwksServer;
let verifier: TokenVerifier;

beforeAll(async () => {
  rsaKey = makeKey('RS256', 'rsa-1');
  ecKey = makeKey('ES256', 'ec-1');
  edKey = makeKey('EdDSA', 'ed-1');
  otherIssuerKey = makeKey('ES256', 'other-1');
  attackerRsaKey = makeKey('RS256', 'rsa-1');
  attackerEcKey = makeKey('ES256', 'ec-1');
  server = await startJwksServer();
  server.serve('/jwks', { body: keySetOf(rsaKey, ecKey, edKey) });
  server.serve('/attacker/jwks', { body: keySetOf(attackerRsaKey) });
  verifier = createTokenVerifier({
    issuers: [
      { issuer: ISSUER, jwks: { kind: 'url', url: `${server.origin}/jwks`, cooldownMs: 60_000 } },
      { issuer: OTHER_ISSUER, jwks: { kind: 'inline', keySet: keySetOf(otherIssuerKey) } },
    ],
  });
  // Prime the cache so later fetch counts show what an attack token triggered.
  await verifier.verify(signedToken(rsaKey, validClaims(ISSUER)));
});

afterAll(async () => {
  await server.close();
});

const reasonFor = async (token: string) => (await refusalOf(verifier.verify(token))).reason;

test('control: a properly signed token of each allowed algorithm is accepted', async () => {
  for (const key of [rsaKey, ecKey, edKey]) {
    await expect(verifier.verify(signedToken(key, validClaims(ISSUER)))).resolves.toMatchObject({ issuer: ISSUER });
  }
});

describe('alg none', () => {
  test.each(['none', 'None', 'NONE'])('alg "%s" with an empty signature is refused', async (alg) => {
    const token = buildToken({ alg, typ: 'JWT' }, validClaims(ISSUER), () => '');
    expect(await reasonFor(token)).toBe('algorithm_not_allowed');
  });

  test('alg "none" with a trusted kid and a garbage signature is refused', async () => {
    const token = buildToken({ alg: 'none', kid: rsaKey.kid }, validClaims(ISSUER), () => Buffer.from('garbage'));
    expect(await reasonFor(token)).toBe('algorithm_not_allowed');
  });
});

describe('algorithm confusion: HS256 keyed with the issuer public key', () => {
  const forms: Array<[string, () => string | Buffer]> = [
    ['PEM', () => publicKeyPem(rsaKey)],
    ['DER', () => createPublicKey(rsaKey.privateKey).export({ format: 'der', type: 'spki' })],
    ['JWK text', () => JSON.stringify(rsaKey.publicJwk)],
  ];
  test.each(forms)('HMAC keyed by the public key as %s is refused', async (_form, publicKeyBytes) => {
    const token = buildToken({ alg: 'HS256', kid: rsaKey.kid, typ: 'JWT' }, validClaims(ISSUER), (input) =>
      hmacSignature(publicKeyBytes(), input),
    );
    expect(await reasonFor(token)).toBe('algorithm_not_allowed');
  });

  test.each(['HS384', 'HS512', 'PS256', 'RS512', 'ES384', 'ES256K', 'Ed25519', 'RSA-OAEP', ''])(
    'alg "%s" outside the allow-list is refused',
    async (alg) => {
      const token = buildToken({ alg, kid: rsaKey.kid }, validClaims(ISSUER), (input) =>
        signatureFor('RS256', rsaKey.privateKey, input),
      );
      expect(await reasonFor(token)).toBe('algorithm_not_allowed');
    },
  );
});

describe('algorithm substitution', () => {
  test('an ES256 header on the RSA key id is refused', async () => {
    const token = buildToken({ alg: 'ES256', kid: rsaKey.kid }, validClaims(ISSUER), (input) =>
      signatureFor('ES256', attackerEcKey.privateKey, input),
    );
    expect(await reasonFor(token)).toBe('unknown_key');
  });

  test('an RS256 header on the EC key id is refused', async () => {
    const token = buildToken({ alg: 'RS256', kid: ecKey.kid }, validClaims(ISSUER), (input) =>
      signatureFor('RS256', attackerRsaKey.privateKey, input),
    );
    expect(await reasonFor(token)).toBe('unknown_key');
  });

  test('an EdDSA header on the EC key id is refused', async () => {
    const token = buildToken({ alg: 'EdDSA', kid: ecKey.kid }, validClaims(ISSUER), (input) =>
      signatureFor('EdDSA', edKey.privateKey, input),
    );
    expect(await reasonFor(token)).toBe('unknown_key');
  });
});

test('foreign key under a trusted kid: signed by an attacker key with the right kid is refused', async () => {
  expect(await reasonFor(signedToken(attackerRsaKey, validClaims(ISSUER)))).toBe('bad_signature');
  expect(await reasonFor(signedToken(attackerEcKey, validClaims(ISSUER)))).toBe('bad_signature');
});

test('unknown kid: refused, and a flood of them does not refetch the key set inside the cooldown', async () => {
  const fetchesBefore = server.hits('/jwks');
  const floods = Array.from({ length: 50 }, (_, index) =>
    signedToken({ ...attackerRsaKey, kid: `made-up-${index}` }, validClaims(ISSUER)),
  );
  const reasons = await Promise.all(floods.map(reasonFor));
  expect(new Set(reasons)).toEqual(new Set(['unknown_key']));
  expect(server.hits('/jwks')).toBe(fetchesBefore);
});

describe('embedded jwk', () => {
  test('a header jwk carrying the attacker key, signed by it, is refused', async () => {
    const token = signedToken(attackerRsaKey, validClaims(ISSUER), { kid: undefined, jwk: attackerRsaKey.publicJwk });
    expect(await reasonFor(token)).toBe('forbidden_header');
  });

  test('a header jwk next to a trusted kid is refused even when the trusted key signed', async () => {
    const token = signedToken(rsaKey, validClaims(ISSUER), { jwk: attackerRsaKey.publicJwk });
    expect(await reasonFor(token)).toBe('forbidden_header');
  });
});

describe('jku / x5u injection', () => {
  test.each(['jku', 'x5u'])(
    'a %s header pointing at the attacker key set is refused and never fetched',
    async (parameter) => {
      const token = signedToken(attackerRsaKey, validClaims(ISSUER), { [parameter]: `${server.origin}/attacker/jwks` });
      expect(await reasonFor(token)).toBe('forbidden_header');
      expect(server.hits('/attacker/jwks')).toBe(0);
    },
  );
});

test('x5c injection: an attacker certificate chain in the header is refused', async () => {
  const attackerCertificateLike = createPublicKey(attackerRsaKey.privateKey)
    .export({ format: 'der', type: 'spki' })
    .toString('base64');
  const token = signedToken(attackerRsaKey, validClaims(ISSUER), { kid: undefined, x5c: [attackerCertificateLike] });
  expect(await reasonFor(token)).toBe('forbidden_header');
});

describe('kid injection', () => {
  test('kid "../../dev/null" with HS256 under an empty key is refused', async () => {
    const token = buildToken({ alg: 'HS256', kid: '../../dev/null' }, validClaims(ISSUER), (input) =>
      hmacSignature('', input),
    );
    expect(await reasonFor(token)).toBe('algorithm_not_allowed');
  });

  test.each(['../../dev/null', "x' UNION SELECT 'attacker-key' --", '/etc/passwd', 'rsa-1\u0000'])(
    'kid %j signed by an attacker is only a failed lookup',
    async (kid) => {
      const token = signedToken({ ...attackerRsaKey, kid }, validClaims(ISSUER));
      expect(await reasonFor(token)).toBe('unknown_key');
    },
  );

  test('a kid that is not a string is refused (jose would ignore it and pick any key of the type)', async () => {
    const token = signedToken(attackerRsaKey, validClaims(ISSUER), { kid: { $ne: null } });
    expect(await reasonFor(token)).toBe('malformed');
  });
});

test('unknown crit: a critical extension we do not understand is refused', async () => {
  const token = signedToken(rsaKey, validClaims(ISSUER), {
    crit: ['urn:example:must-understand'],
    'urn:example:must-understand': true,
  });
  expect(await reasonFor(token)).toBe('unsupported_critical_header');
});

test('expired: exp beyond the 30 s clock tolerance is refused', async () => {
  const now = nowSeconds();
  expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER, { iat: now - 600, exp: now - 31 })))).toBe('expired');
});

test('not yet valid: nbf beyond the 30 s clock tolerance is refused', async () => {
  expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER, { nbf: nowSeconds() + 60 })))).toBe('not_yet_valid');
});

test('missing exp: a token without exp is refused', async () => {
  const { exp: _exp, ...claims } = validClaims(ISSUER);
  const refusal = await refusalOf(verifier.verify(signedToken(rsaKey, claims)));
  expect([refusal.reason, refusal.detail]).toEqual(['missing_claim', 'exp']);
});

test('too long-lived: exp - iat beyond the maximum lifetime is refused', async () => {
  const now = nowSeconds();
  expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER, { iat: now, exp: now + 3601 })))).toBe(
    'lifetime_too_long',
  );
  expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER, { iat: now - 86_400, exp: now + 60 })))).toBe(
    'lifetime_too_long',
  );
});

describe('wrong audience', () => {
  test('aud naming another service is refused', async () => {
    expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER, { aud: 'billing' })))).toBe('wrong_audience');
  });

  test('aud missing is refused', async () => {
    const { aud: _aud, ...claims } = validClaims(ISSUER);
    const refusal = await refusalOf(verifier.verify(signedToken(rsaKey, claims)));
    expect([refusal.reason, refusal.detail]).toEqual(['missing_claim', 'aud']);
  });

  test('aud as an array without this service is refused', async () => {
    expect(
      await reasonFor(signedToken(rsaKey, validClaims(ISSUER, { aud: ['billing', 'provsec-staging', 'PROVSEC'] }))),
    ).toBe('wrong_audience');
  });

  test('aud that is not a string or array of strings is refused', async () => {
    expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER, { aud: { provsec: true } })))).toBe(
      'wrong_audience',
    );
  });
});

describe('wrong issuer', () => {
  test('iss other than a configured issuer is refused without fetching anything', async () => {
    const fetchesBefore = server.hits('/jwks');
    expect(await reasonFor(signedToken(rsaKey, validClaims('https://evil.test')))).toBe('wrong_issuer');
    expect(await reasonFor(signedToken(rsaKey, validClaims(`${ISSUER}/`)))).toBe('wrong_issuer');
    expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER, { iss: [ISSUER] })))).toBe('wrong_issuer');
    expect(server.hits('/jwks')).toBe(fetchesBefore);
  });

  test('iss missing is refused', async () => {
    const { iss: _iss, ...claims } = validClaims(ISSUER);
    expect(await reasonFor(signedToken(rsaKey, claims))).toBe('missing_claim');
  });

  test('a token claiming one trusted issuer but signed with another trusted issuer key is refused', async () => {
    expect(await reasonFor(signedToken(otherIssuerKey, validClaims(ISSUER)))).toBe('unknown_key');
    expect(await reasonFor(signedToken({ ...rsaKey, kid: otherIssuerKey.kid }, validClaims(OTHER_ISSUER)))).toBe(
      'unknown_key',
    );
  });
});

test('signature tampered: any flipped bit is refused', async () => {
  for (const key of [rsaKey, ecKey, edKey]) {
    const [header, payload, signature] = signedToken(key, validClaims(ISSUER)).split('.') as [string, string, string];
    const signatureBytes = Buffer.from(signature, 'base64url');
    for (const byteIndex of [0, signatureBytes.length >> 1, signatureBytes.length - 1]) {
      const tampered = Buffer.from(signatureBytes);
      tampered[byteIndex] = (tampered[byteIndex] ?? 0) ^ 0x01;
      expect(await reasonFor(`${header}.${payload}.${base64url(tampered)}`)).toBe('bad_signature');
    }
  }
});

test('payload swapped: one token payload under another token header and signature is refused', async () => {
  const ours = signedToken(rsaKey, validClaims(ISSUER, { sub: 'cert-worker' })).split('.');
  const theirs = signedToken(rsaKey, validClaims(ISSUER, { sub: 'management-api' })).split('.');
  expect(await reasonFor(`${ours[0]}.${theirs[1]}.${ours[2]}`)).toBe('bad_signature');
});

describe('stripped signature', () => {
  test('"h.p." (empty signature part) is refused', async () => {
    const [header, payload] = signedToken(rsaKey, validClaims(ISSUER)).split('.');
    expect(await reasonFor(`${header}.${payload}.`)).toBe('malformed');
  });

  test('"h.p" (no signature part) is refused', async () => {
    const [header, payload] = signedToken(rsaKey, validClaims(ISSUER)).split('.');
    expect(await reasonFor(`${header}.${payload}`)).toBe('malformed');
  });
});

describe('malformed', () => {
  const valid = () => signedToken(rsaKey, validClaims(ISSUER)).split('.') as [string, string, string];

  test('one part is refused', async () => {
    expect(await reasonFor('eyJhbGciOiJSUzI1NiJ9')).toBe('malformed');
  });

  test('four parts are refused', async () => {
    expect(await reasonFor(`${valid().join('.')}.AAAA`)).toBe('malformed');
  });

  test('five parts (a JWE) are refused', async () => {
    const header = base64url(JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM' }));
    expect(await reasonFor(`${header}.AAAA.AAAA.AAAA.AAAA`)).toBe('malformed');
  });

  test('standard base64 characters (+ /) are refused', async () => {
    const [header, payload, signature] = valid();
    expect(await reasonFor(`${header}.${payload}.${signature.replace(/-/g, '+').replace(/_/g, '/')}+/`)).toBe(
      'malformed',
    );
  });

  test('base64 padding is refused', async () => {
    const [header, payload, signature] = valid();
    expect(await reasonFor(`${header}==.${payload}.${signature}`)).toBe('malformed');
  });

  test('non-canonical base64url (stray trailing bits) is refused', async () => {
    const [header, payload, signature] = valid();
    // RS256 signatures are 256 bytes: the last base64url character carries 4 unused bits.
    const last = signature.at(-1) ?? 'A';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytesOtherSpelling = alphabet[alphabet.indexOf(last) ^ 0x01] ?? 'A';
    expect(await reasonFor(`${header}.${payload}.${signature.slice(0, -1)}${sameBytesOtherSpelling}`)).toBe(
      'malformed',
    );
  });

  test('a header that is not JSON is refused', async () => {
    const [, payload, signature] = valid();
    expect(await reasonFor(`${base64url('{"alg":"RS256"')}.${payload}.${signature}`)).toBe('malformed');
  });

  test('a header that is a JSON array is refused', async () => {
    const [, payload, signature] = valid();
    expect(await reasonFor(`${base64url('["RS256"]')}.${payload}.${signature}`)).toBe('malformed');
  });

  test('a header that is not UTF-8 is refused', async () => {
    const [, payload, signature] = valid();
    expect(await reasonFor(`${base64url(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))}.${payload}.${signature}`)).toBe(
      'malformed',
    );
  });

  test('a payload that is not a JSON object is refused', async () => {
    expect(
      await reasonFor(
        buildToken({ alg: 'RS256', kid: rsaKey.kid }, '"just a string"', (input) =>
          signatureFor('RS256', rsaKey.privateKey, input),
        ),
      ),
    ).toBe('malformed');
  });

  test('duplicate names in the header ({"alg":"RS256","alg":"none"}) are refused', async () => {
    const header = `{"alg":"none","kid":"${rsaKey.kid}","alg":"RS256"}`;
    const token = buildToken(header, validClaims(ISSUER), (input) => signatureFor('RS256', rsaKey.privateKey, input));
    expect(await reasonFor(token)).toBe('malformed');
  });

  test('duplicate names hidden by a JSON escape ("alg" and "\\u0061lg") are refused', async () => {
    const header = `{"alg":"RS256","kid":"${rsaKey.kid}","\\u0061lg":"RS256"}`;
    const token = buildToken(header, validClaims(ISSUER), (input) => signatureFor('RS256', rsaKey.privateKey, input));
    expect(await reasonFor(token)).toBe('malformed');
  });

  test('duplicate claims in the payload (two "sub") are refused even when properly signed', async () => {
    const claims = validClaims(ISSUER);
    const payload = JSON.stringify(claims).replace(/}$/, ',"sub":"management-api"}');
    const token = buildToken({ alg: 'RS256', kid: rsaKey.kid }, payload, (input) =>
      signatureFor('RS256', rsaKey.privateKey, input),
    );
    expect(await reasonFor(token)).toBe('malformed');
  });

  test('the empty string is refused as a missing token', async () => {
    expect(await reasonFor('')).toBe('missing_token');
  });
});

describe('token outside the Authorization header', () => {
  // Only parseBearerHeader hands tokens to the verifier; a request whose token sits in the query
  // string or a cookie has no Authorization header, so it is refused before any verification.
  test('no Authorization header (token in query or cookie) is refused as missing', () => {
    expect(() => parseBearerHeader(undefined)).toThrow(expect.objectContaining({ reason: 'missing_token' }));
  });

  test('a cookie-style or query-style value in the Authorization header is refused', () => {
    const token = signedToken(rsaKey, validClaims(ISSUER));
    for (const value of [
      `access_token=${token}`,
      `token=${token}`,
      token,
      `Basic ${token}`,
      `Bearer  ${token}`,
      `Bearer ${token}, Bearer ${token}`,
    ]) {
      expect(() => parseBearerHeader(value)).toThrow(expect.objectContaining({ reason: 'malformed' }));
    }
  });
});

test('iat in the future beyond the clock tolerance is refused', async () => {
  const now = nowSeconds();
  expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER, { iat: now + 120, exp: now + 300 })))).toBe(
    'issued_in_future',
  );
});

describe('non-numeric times', () => {
  const now = nowSeconds();
  const cases: Array<[string, string]> = [
    ['exp as a string', `"exp":"${now + 300}"`],
    ['exp as an object', '"exp":{"$gt":0}'],
    ['exp as null', '"exp":null'],
    ['exp as true', '"exp":true'],
    ['exp that overflows to Infinity', '"exp":1e400'],
    ['exp far beyond year 9999', '"exp":1e20'],
    ['nbf as a string', `"nbf":"${now}"`],
    ['iat as a string', '"iat":"now"'],
    ['iat negative', '"iat":-5'],
    ['iat that overflows to -Infinity', '"iat":-1e400'],
  ];
  test.each(cases)('%s is refused', async (_name, member) => {
    const [name] = member.split(':');
    const { [JSON.parse(name ?? '""') as string]: _replaced, ...others } = validClaims(ISSUER);
    const payload = JSON.stringify(others).replace(/}$/, `,${member}}`);
    const token = buildToken({ alg: 'RS256', kid: rsaKey.kid }, payload, (input) =>
      signatureFor('RS256', rsaKey.privateKey, input),
    );
    expect(await reasonFor(token)).toBe('invalid_claim');
  });
});

describe('unencoded payload', () => {
  test('header {"b64":false,"crit":["b64"]} with an unencoded payload is refused', async () => {
    const header = base64url(JSON.stringify({ alg: 'RS256', kid: rsaKey.kid, b64: false, crit: ['b64'] }));
    const rawPayload = JSON.stringify(validClaims(ISSUER));
    const signature = base64url(signatureFor('RS256', rsaKey.privateKey, `${header}.${rawPayload}`));
    // Compact form with b64:false carries the payload as is; base64url it so the token still splits in three.
    expect(await reasonFor(`${header}.${base64url(rawPayload)}.${signature}`)).toBe('forbidden_header');
  });

  test('header {"b64":false} without crit is refused too', async () => {
    expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER), { b64: false }))).toBe('forbidden_header');
  });
});

describe('cross-token confusion', () => {
  test('an ID token minted for a client (aud = client id, nonce) is refused', async () => {
    const idToken = signedToken(
      rsaKey,
      validClaims(ISSUER, { aud: 'management-ui', nonce: 'n-0S6_WzA2Mj', azp: 'management-ui' }),
    );
    expect(await reasonFor(idToken)).toBe('wrong_audience');
  });

  test('a token minted for another service is refused', async () => {
    expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER, { aud: 'https://vault.internal' })))).toBe(
      'wrong_audience',
    );
  });

  test.each(['logout+jwt', 'dpop+jwt', 'secevent+jwt', 'id_token+jwt'])(
    'a token typed "%s" is refused even with our audience',
    async (typ) => {
      expect(await reasonFor(signedToken(rsaKey, validClaims(ISSUER), { typ }))).toBe('wrong_type');
    },
  );

  test('an issuer configured to require typ at+jwt refuses a plain JWT and accepts application/at+jwt', async () => {
    const strict = createTokenVerifier({
      issuers: [{ issuer: ISSUER, requiredType: 'at+jwt', jwks: { kind: 'inline', keySet: keySetOf(rsaKey) } }],
    });
    expect((await refusalOf(strict.verify(signedToken(rsaKey, validClaims(ISSUER))))).reason).toBe('wrong_type');
    expect((await refusalOf(strict.verify(signedToken(rsaKey, validClaims(ISSUER), { typ: undefined })))).reason).toBe(
      'wrong_type',
    );
    await expect(
      strict.verify(signedToken(rsaKey, validClaims(ISSUER), { typ: 'application/at+jwt' })),
    ).resolves.toMatchObject({ issuer: ISSUER });
  });
});
