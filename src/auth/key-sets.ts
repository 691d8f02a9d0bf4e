/**
 * Where a trusted issuer's public keys come from: a JWKS URL (fetched by jose, cached, refreshed on
 * an unknown kid no more than once per cooldown) or a JWKS file read once at start-up.
 * Invariants: keys come only from configuration, never from a token; a key set holds public
 * asymmetric keys only; a failure to obtain keys surfaces as KeySetUnavailableError, which the
 * verifier reports as our fault (`jwks_unavailable`), never as the caller's.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { AuthConfigError } from './errors';
import { needs } from '../crypto/needs';

export type JwksSource =
  | {
      readonly kind: 'url';
      readonly url: string;
      /** Abandon a key set fetch after this long (jose `timeoutDuration`). Default 3000. */
      readonly timeoutMs?: number;
      /**
       * After a fetch, an unknown kid does not trigger another fetch until this much time has
       * passed (jose `cooldownDuration`): a flood of made-up kids costs the issuer one request
       * per cooldown, not one per token. Default 30000.
       */
      readonly cooldownMs?: number;
      /** Refetch the key set when it is older than this, even without an unknown kid (jose `cacheMaxAge`). Default 600000. */
      readonly cacheMaxAgeMs?: number;
      /**
       * Send `Authorization: Bearer <file contents>` with each fetch, re-read every time: the
       * Kubernetes API server serves /openid/v1/jwks to service accounts, and their projected
       * tokens rotate. For a private CA, start node with NODE_EXTRA_CA_CERTS.
       */
      readonly bearerTokenFile?: string;
    }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'inline'; readonly keySet: JSONWebKeySet };

export const JWKS_DEFAULTS = { timeoutMs: 3000, cooldownMs: 30_000, cacheMaxAgeMs: 600_000 } as const;

/** The key set could not be fetched, or what it served is unusable. */
export class KeySetUnavailableError extends Error {
  constructor(readonly causeName: string) {
    super(`key set unavailable (${causeName})`);
    this.name = 'KeySetUnavailableError';
  }
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const ASYMMETRIC_KEY_TYPES = ['RSA', 'EC', 'OKP'];

/** Builds the jose key getter for one issuer. Throws AuthConfigError at start-up on a bad source. */
export function createKeyResolver(source: JwksSource, description: string): JWTVerifyGetKey {
  switch (source.kind) {
    case 'url':
      return withFailuresClassified(createRemoteKeySet(source, description));
    case 'file':
      return withFailuresClassified(
        createLocalJWKSet(validatedKeySet(readKeySetFile(source.path, description), description)),
      );
    case 'inline':
      return withFailuresClassified(createLocalJWKSet(validatedKeySet(source.keySet, description)));
  }
}

function createRemoteKeySet(source: Extract<JwksSource, { kind: 'url' }>, description: string): JWTVerifyGetKey {
  let url: URL;
  try {
    url = new URL(source.url);
  } catch {
    throw new AuthConfigError(`${description}: JWKS URL is not a URL`);
  }
  // Keys fetched over plain http could be swapped by anyone on the path; loopback is the one exception (tests, sidecars).
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
  needs(
    url.protocol === 'https:' || (url.protocol === 'http:' && loopback),
    () => new AuthConfigError(`${description}: JWKS URL must use https (plain http only on loopback)`),
  );
  const timeoutMs = source.timeoutMs ?? JWKS_DEFAULTS.timeoutMs;
  const cooldownMs = source.cooldownMs ?? JWKS_DEFAULTS.cooldownMs;
  const cacheMaxAgeMs = source.cacheMaxAgeMs ?? JWKS_DEFAULTS.cacheMaxAgeMs;
  needs(
    Number.isInteger(timeoutMs) && timeoutMs >= 100 && timeoutMs <= 60_000,
    () => new AuthConfigError(`${description}: JWKS fetch timeout must be 100..60000 ms`),
  );
  // A zero cooldown would let every token with a made-up kid cause a fetch: the refresh must stay rate-limited.
  needs(
    Number.isInteger(cooldownMs) && cooldownMs >= 100 && cooldownMs <= 3_600_000,
    () => new AuthConfigError(`${description}: JWKS refresh cooldown must be 100..3600000 ms`),
  );
  needs(
    Number.isInteger(cacheMaxAgeMs) && cacheMaxAgeMs >= cooldownMs && cacheMaxAgeMs <= 86_400_000,
    () => new AuthConfigError(`${description}: JWKS cache max age must be between the cooldown and 86400000 ms`),
  );
  return createRemoteJWKSet(url, {
    timeoutDuration: timeoutMs,
    cooldownDuration: cooldownMs,
    cacheMaxAge: cacheMaxAgeMs,
    headers: requestHeaders(source.bearerTokenFile),
  });
}

/**
 * jose 5.10 hands this same object to https.get on every fetch (it replaces it only when it has
 * no User-Agent), so a getter re-reads a rotating token file each time. Pinned by a test.
 */
function requestHeaders(bearerTokenFile: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { 'User-Agent': 'provsec-jwks-client', Accept: 'application/json' };
  if (bearerTokenFile !== undefined) {
    Object.defineProperty(headers, 'Authorization', {
      enumerable: true,
      get: () => `Bearer ${readFileSync(bearerTokenFile, 'utf8').trim()}`,
    });
  }
  return headers;
}

function readKeySetFile(path: string, description: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new AuthConfigError(
      `${description}: cannot read JWKS file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new AuthConfigError(`${description}: JWKS file ${path} is not JSON`);
  }
}

/** Refuses at start-up what jose would only refuse per request: private or symmetric keys, unparsable keys. */
function validatedKeySet(candidate: unknown, description: string): JSONWebKeySet {
  const keys = (candidate as { keys?: unknown } | null)?.keys;
  needs(
    Array.isArray(keys) && keys.length > 0,
    () => new AuthConfigError(`${description}: JWKS must be an object with a non-empty "keys" array`),
  );
  keys.forEach((key: unknown, index) => {
    const where = `${description}: JWKS keys[${index}]`;
    needs(
      typeof key === 'object' && key !== null && !Array.isArray(key),
      () => new AuthConfigError(`${where} is not an object`),
    );
    const jwk = key as Record<string, unknown>;
    // A symmetric key here would make HMAC tokens verifiable by anyone who can read the key set.
    needs(
      ASYMMETRIC_KEY_TYPES.includes(jwk.kty as string),
      () => new AuthConfigError(`${where} has kty ${String(jwk.kty)}; only RSA, EC and OKP public keys are trusted`),
    );
    needs(
      PRIVATE_JWK_MEMBERS.every((member) => !(member in jwk)),
      () => new AuthConfigError(`${where} holds private key material; publish public keys only`),
    );
    try {
      createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    } catch {
      throw new AuthConfigError(`${where} is not a valid public key`);
    }
  });
  return candidate as JSONWebKeySet;
}

/**
 * "No key for this kid" stays the caller's problem (`unknown_key`); anything else that goes wrong
 * while getting keys (network, timeout, non-200, bad JSON, a key jose cannot import) is ours.
 */
function withFailuresClassified(resolveKey: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (protectedHeader, token) => {
    try {
      return await resolveKey(protectedHeader, token);
    } catch (error) {
      if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys)
        throw error;
      throw new KeySetUnavailableError(
        error instanceof Error
          ? ('code' in error && typeof error.code === 'string' && error.code) || error.name
          : 'unknown',
      );
    }
  };
}
