/**
 * Real key pairs and hand-built compact JWS for the auth tests. Tokens are assembled byte by byte
 * (not through jose's SignJWT) so a test can produce what a well-behaved library refuses to sign:
 * alg none, HMAC under a public key, embedded keys, duplicate header names, and so on.
 */
import { createHmac, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { JSONWebKeySet, JWK } from 'jose';

export type TestAlgorithm = 'RS256' | 'ES256' | 'EdDSA';

export interface TestKey {
  readonly alg: TestAlgorithm;
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Public JWK with kid, alg and use, as an issuer publishes it. */
  readonly publicJwk: JWK;
}

export function makeKey(alg: TestAlgorithm, kid: string): TestKey {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  const publicJwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, publicJwk };
}

export function keySetOf(...keys: TestKey[]): JSONWebKeySet {
  return { keys: keys.map((key) => key.publicJwk) };
}

export function base64url(input: string | Buffer): string {
  return Buffer.from(input).toString('base64url');
}

/** JWS signature bytes over `signingInput` (RFC 7518: ES256 is r||s, not DER). */
export function signatureFor(alg: TestAlgorithm, privateKey: KeyObject, signingInput: string): Buffer {
  const data = Buffer.from(signingInput);
  if (alg === 'RS256') return sign('sha256', data, privateKey);
  if (alg === 'ES256') return sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return sign(null, data, privateKey);
}

/**
 * A compact JWS from a header and payload given as objects or as exact JSON text, signed by
 * `signer` over the ASCII signing input. `signer` returning '' leaves the signature empty.
 */
export function buildToken(
  header: object | string,
  payload: object | string,
  signer: (signingInput: string) => Buffer | string,
): string {
  const encodedHeader = base64url(typeof header === 'string' ? header : JSON.stringify(header));
  const encodedPayload = base64url(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const signingInput = `${encodedHeader}.${encodedPayload}`;
  const signature = signer(signingInput);
  return `${signingInput}.${typeof signature === 'string' ? signature : base64url(signature)}`;
}

/** A token signed properly by `key`, with its kid and alg in the header unless overridden. */
export function signedToken(key: TestKey, claims: object, extraHeader: object = {}): string {
  return buildToken({ alg: key.alg, kid: key.kid, typ: 'JWT', ...extraHeader }, claims, (input) =>
    signatureFor(key.alg, key.privateKey, input),
  );
}

export function hmacSignature(secret: string | Buffer, signingInput: string): Buffer {
  return createHmac('sha256', secret).update(signingInput).digest();
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Claims that pass: this issuer, our audience, issued now, five minutes to live. */
export function validClaims(issuer: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSeconds();
  return {
    iss: issuer,
    aud: 'provsec',
    sub: 'system:serviceaccount:provisioning:cert-worker',
    iat: now,
    exp: now + 300,
    ...overrides,
  };
}

export function publicKeyPem(key: TestKey): string {
  return createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }).toString();
}
