/**
 * Hand-made compact JWS for the HTTP attack tests. Tokens are assembled byte by byte (not through
 * jose's SignJWT) so a test can send what a careful library refuses to sign: alg none, HMAC keyed
 * with a public key, embedded keys, duplicate header names, a certificate chain of its own.
 */
import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';

export type SigningAlgorithm = 'RS256' | 'ES256' | 'EdDSA';

export interface ForgeryKey {
  readonly alg: SigningAlgorithm;
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Public JWK with kid, alg and use, as an issuer publishes it. */
  readonly publicJwk: JWK;
}

export function makeKey(alg: SigningAlgorithm, kid: string): ForgeryKey {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  return { alg, kid, privateKey, publicKey, publicJwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' } };
}

export function keySetOf(...keys: ForgeryKey[]): { keys: JWK[] } {
  return { keys: keys.map((key) => key.publicJwk) };
}

export function base64url(input: string | Buffer): string {
  return Buffer.from(input).toString('base64url');
}

/** JWS signature bytes over `signingInput` (RFC 7518: ES256 is r||s, not DER). */
export function signatureFor(alg: SigningAlgorithm, privateKey: KeyObject, signingInput: string): Buffer {
  const data = Buffer.from(signingInput);
  if (alg === 'RS256') return sign('sha256', data, privateKey);
  if (alg === 'ES256') return sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return sign(null, data, privateKey);
}

export function hmacSignature(secret: string | Buffer, signingInput: string): Buffer {
  return createHmac('sha256', secret).update(signingInput).digest();
}

/**
 * A compact JWS from a header and payload given as objects or as exact JSON text, signed by
 * `signer` over the ASCII signing input. `signer` returning '' leaves the signature empty.
 */
export function buildToken(header: object | string, payload: object | string, signer: (signingInput: string) => Buffer | string): string {
  const encodedHeader = base64url(typeof header === 'string' ? header : JSON.stringify(header));
  const encodedPayload = base64url(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const signingInput = `${encodedHeader}.${encodedPayload}`;
  const signature = signer(signingInput);
  return `${signingInput}.${typeof signature === 'string' ? signature : base64url(signature)}`;
}

/** A token properly signed by `key`, its kid and alg in the header unless `extraHeader` overrides them. */
export function signedToken(key: ForgeryKey, claims: object, extraHeader: object = {}): string {
  return buildToken({ alg: key.alg, kid: key.kid, typ: 'JWT', ...extraHeader }, claims, (input) => signatureFor(key.alg, key.privateKey, input));
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * A self-signed certificate for `key` (DER, base64 as in an x5c header), made with the openssl
 * CLI: a token can then carry a chain that really matches its signature, so only refusing
 * the header (not a mismatch) can stop it.
 */
export function selfSignedCertificateBase64(key: ForgeryKey): string {
  const directory = mkdtempSync(join(tmpdir(), 'provsec-x5c-'));
  try {
    const keyFile = join(directory, 'key.pem');
    const certFile = join(directory, 'cert.der');
    writeFileSync(keyFile, key.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    execFileSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=attacker', '-days', '1', '-outform', 'DER', '-out', certFile], { stdio: 'ignore' });
    return readFileSync(certFile).toString('base64');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
