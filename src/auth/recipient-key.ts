/**
 * A worker's registered recipient key (`recipientKey` on a policy rule): the PUBLIC JWK the service
 * encrypts that worker's secret answers to. Invariants: never a private key (no `d`); only EC P-256
 * or OKP X25519; always a `kid`, which the JWE header and the audit record carry.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { SECRET_JWE_ALG } from '../protocol/secret-answer';

export const MAX_KID_LENGTH = 128;
/** Printable ASCII without spaces or quotes: a kid is written into logs, audit rows and headers. */
const KID_PATTERN = /^[A-Za-z0-9._:@/+=-]+$/;
const ALLOWED_MEMBERS = new Set(['kty', 'crv', 'x', 'y', 'kid', 'use', 'alg', 'key_ops']);
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export interface RecipientKey {
  readonly kid: string;
  /** The public JWK as registered (only the members above). */
  readonly jwk: Readonly<JWK>;
  readonly publicKey: KeyObject;
  /** RFC 7638 SHA-256 thumbprint, what a worker names its key by (computed once, on first use). */
  thumbprint(): Promise<string>;
}

/** Why `value` is not an acceptable recipient key, in words for the policy error; undefined if it is. */
export function recipientKeyProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'must be a public JWK object';
  const jwk = value as Record<string, unknown>;
  // A private key in a ConfigMap would hand the worker's key to everyone who can read the policy.
  if ('d' in jwk)
    return 'is a PRIVATE key (it has "d"): register only the public JWK that `provsec-secret keygen` prints, and treat this one as leaked';
  if (jwk.kid === undefined) return 'needs a "kid" (the key id the JWE header and the audit record carry)';
  if (typeof jwk.kid !== 'string' || !KID_PATTERN.test(jwk.kid) || jwk.kid.length > MAX_KID_LENGTH)
    return `"kid" must be 1-${MAX_KID_LENGTH} characters of A-Z a-z 0-9 . _ : @ / + = -`;
  const curve = `${String(jwk.kty)} ${String(jwk.crv)}`;
  if (curve !== 'EC P-256' && curve !== 'OKP X25519')
    return `must be an EC P-256 or OKP X25519 key, not kty ${JSON.stringify(jwk.kty)} crv ${JSON.stringify(jwk.crv)}`;
  const unknown = Object.keys(jwk).filter((member) => !ALLOWED_MEMBERS.has(member));
  if (unknown.length > 0) return `has unknown member${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}`;
  const coordinates = jwk.kty === 'EC' ? ['x', 'y'] : ['x'];
  for (const name of coordinates)
    if (typeof jwk[name] !== 'string' || !BASE64URL.test(jwk[name])) return `"${name}" must be a base64url string`;
  if (jwk.kty === 'OKP' && 'y' in jwk) return 'an OKP key has no "y"';
  if (jwk.use !== undefined && jwk.use !== 'enc') return '"use" must be "enc" when present';
  if (jwk.alg !== undefined && jwk.alg !== SECRET_JWE_ALG) return `"alg" must be "${SECRET_JWE_ALG}" when present`;
  try {
    createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    return 'is not a valid point on its curve';
  }
  return undefined;
}

/** Builds a RecipientKey from a JWK that recipientKeyProblem accepted. */
export function toRecipientKey(jwk: JWK & { kid: string }): RecipientKey {
  const publicKey = createPublicKey({ key: { ...jwk }, format: 'jwk' });
  let thumbprint: Promise<string> | undefined;
  return {
    kid: jwk.kid,
    jwk,
    publicKey,
    thumbprint: () => (thumbprint ??= calculateJwkThumbprint(jwk, 'sha256')),
  };
}
