/**
 * Bearer tokens for the fuzzer that the service must refuse (401), built against a running test
 * service's issuer, key id and real signing key.
 */
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import { TEST_AUDIENCE, TEST_ISSUER, type TestService } from '../../support/test-service';

const base64url = (input: string | Buffer) => Buffer.from(input).toString('base64url');

/** A compact JWS over exact header and payload JSON, ES256-signed by `key` (even when the JSON is odd). */
function handBuiltToken(headerJson: string, payloadJson: string, key: KeyObject): string {
  const signingInput = `${base64url(headerJson)}.${base64url(payloadJson)}`;
  return `${signingInput}.${base64url(sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' }))}`;
}

/**
 * Tokens that must be refused, each for its own reason: re-signed with keys the issuer never
 * published, alg none, HMAC keyed with the public key, the real key with wrong or missing claims or
 * forbidden header parameters, and a valid signature around another payload.
 */
export async function refusedTokens(svc: TestService): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: TEST_ISSUER, aud: TEST_AUDIENCE, sub: 'management-api', iat: now, exp: now + 600 };
  const otherEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const realKey = svc.signingKey as KeyObject;
  const header = (extra: object = {}) => JSON.stringify({ alg: 'ES256', kid: svc.keyId, typ: 'JWT', ...extra });
  const valid = await svc.token('management-api');
  const [validHeader, , validSignature] = valid.split('.') as [string, string, string];
  const publicJwk = JSON.stringify(await exportJWK(realKey));
  const hs256Input = `${base64url(JSON.stringify({ alg: 'HS256', kid: svc.keyId, typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`;
  return [
    // Re-signed with keys the issuer never published.
    await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: svc.keyId, typ: 'JWT' }).sign(otherEc.privateKey),
    await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'someone-else', typ: 'JWT' })
      .sign(otherEc.privateKey),
    await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: svc.keyId, typ: 'JWT' })
      .sign(otherRsa.privateKey),
    await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(otherEc.privateKey),
    // Algorithm tricks: none, and HMAC keyed with the public key.
    `${base64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}.`,
    `${base64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}.${validSignature}`,
    `${hs256Input}.${createHmac('sha256', publicJwk).update(hs256Input).digest('base64url')}`,
    // The real key, wrong claims.
    await svc.token('management-api', { ttlSeconds: -120 }),
    await svc.token('management-api', { audience: 'someone-else' }),
    await svc.token('management-api', { issuer: 'https://evil.example' }),
    await svc.token('management-api', { ttlSeconds: 86_400 }),
    await svc.token('management-api', { claims: { nbf: now + 3600 } }),
    handBuiltToken(header(), JSON.stringify({ ...claims, sub: undefined }), realKey),
    handBuiltToken(header(), JSON.stringify({ ...claims, exp: undefined }), realKey),
    handBuiltToken(header(), JSON.stringify({ ...claims, aud: undefined }), realKey),
    handBuiltToken(header(), JSON.stringify({ ...claims, iat: now + 3600, exp: now + 4000 }), realKey),
    handBuiltToken(header(), JSON.stringify({ ...claims, sub: 42 }), realKey),
    handBuiltToken(header(), JSON.stringify({ ...claims, exp: 'tomorrow' }), realKey),
    handBuiltToken(header(), JSON.stringify([claims]), realKey),
    handBuiltToken(header(), `${JSON.stringify(claims).slice(0, -1)},"sub":"key-admin"}`, realKey),
    handBuiltToken(header({ typ: 'id+jwt' }), JSON.stringify(claims), realKey),
    handBuiltToken(header({ crit: ['exp'] }), JSON.stringify(claims), realKey),
    handBuiltToken(header({ jku: 'https://evil.example/jwks' }), JSON.stringify(claims), realKey),
    handBuiltToken(header({ jwk: JSON.parse(publicJwk) as object }), JSON.stringify(claims), realKey),
    handBuiltToken(header({ kid: 42 }), JSON.stringify(claims), realKey),
    handBuiltToken(`{"alg":"ES256","alg":"none","kid":"${svc.keyId}"}`, JSON.stringify(claims), realKey),
    // A valid header and signature around another payload.
    `${validHeader}.${base64url(JSON.stringify({ ...claims, sub: 'key-admin' }))}.${validSignature}`,
  ];
}
