/**
 * Remembers successful token verifications briefly, so a worker that presents the same token on
 * every request pays for one signature check per TTL instead of one per request (an ES256 check
 * was the largest single cost of a secret read in `npm run bench`).
 * Invariants: only successes are cached, so every refusal is re-checked and audited each time; an
 * entry never outlives the token's own `exp` nor `ttlMs` after the check that admitted it; the key
 * is the token's SHA-256, so the bearer token itself is not kept; the cache holds at most
 * `maxEntries` (oldest dropped first), and only a valid token can add one.
 */
import { hash } from 'node:crypto';
import { needs } from '../crypto/needs';
import { AuthConfigError } from './errors';
import type { Principal } from './principal';
import type { TokenVerifier } from './token-verifier';

export interface VerificationCacheOptions {
  /**
   * How long a success is trusted without a new check. It bounds how long a key removed from the
   * issuer's JWKS keeps admitting tokens it signed (a remote key set is itself cached for up to 10
   * minutes, see key-sets.ts). Default 30000; at most 300000.
   */
  readonly ttlMs?: number;
  /** Default 10000 (a few MB at most). */
  readonly maxEntries?: number;
  /** The clock, for tests: milliseconds since the epoch. */
  readonly nowMs?: () => number;
}

export const VERIFICATION_CACHE_DEFAULTS = { ttlMs: 30_000, maxEntries: 10_000 } as const;

interface CachedVerification {
  readonly principal: Principal;
  readonly trustedUntilMs: number;
}

export function withVerificationCache(verifier: TokenVerifier, options: VerificationCacheOptions = {}): TokenVerifier {
  const ttlMs = options.ttlMs ?? VERIFICATION_CACHE_DEFAULTS.ttlMs;
  const maxEntries = options.maxEntries ?? VERIFICATION_CACHE_DEFAULTS.maxEntries;
  const nowMs = options.nowMs ?? Date.now;
  // A long TTL would keep tokens of a withdrawn signing key working long after the issuer dropped it.
  needs(
    Number.isInteger(ttlMs) && ttlMs > 0 && ttlMs <= 300_000,
    () => new AuthConfigError('verification cache TTL must be 1..300000 ms'),
  );
  needs(
    Number.isInteger(maxEntries) && maxEntries > 0,
    () => new AuthConfigError('verification cache size must be a positive whole number'),
  );

  // A Map iterates in insertion order: its first key is the oldest entry.
  const entries = new Map<string, CachedVerification>();

  return {
    async verify(bearerToken: string): Promise<Principal> {
      // One-shot hash(): a third of createHash()'s cost (no Hash object per request).
      const key = hash('sha256', bearerToken, 'base64');
      const cached = entries.get(key);
      if (cached !== undefined) {
        if (nowMs() < cached.trustedUntilMs) return cached.principal;
        entries.delete(key);
      }
      const principal = await verifier.verify(bearerToken);
      const checkedAtMs = nowMs();
      // Never past exp: after it the token goes back to the verifier, which applies its clock tolerance.
      const trustedUntilMs = Math.min(principal.expiresAt.getTime(), checkedAtMs + ttlMs);
      if (trustedUntilMs > checkedAtMs) {
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
        entries.set(key, { principal, trustedUntilMs });
      }
      return principal;
    },
  };
}
