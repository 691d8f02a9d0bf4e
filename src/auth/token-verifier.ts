/**
 * Bearer token verification: a compact JWS, signed with RS256, ES256 or EdDSA by a key from the
 * configured key set of one trusted issuer, for our audience, inside its validity window.
 * Invariants: the token's unverified `iss` only selects which configured issuer's keys to try, and
 * that issuer is then checked again by jose against the verified payload; a token never supplies
 * its own key; every refusal is an AuthenticationError with a reason, never a raw library error.
 */
import { jwtVerify, type JWTPayload } from 'jose';
import { ALLOWED_ALGORITHMS, inspectCompactToken } from './compact-token';
import { AuthConfigError, AuthenticationError } from './errors';
import { authenticationErrorFrom } from './jose-failure';
import { createKeyResolver, type JwksSource } from './key-sets';
import type { Principal } from './principal';
import { principalFromVerifiedClaims } from './token-claims';
import { needs } from '../crypto/needs';

export const DEFAULT_AUDIENCE = 'provsec';
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 3600;
/**
 * Allowed clock skew between us and an issuer, applied to exp, nbf and iat. 30 s absorbs NTP drift
 * between nodes without meaningfully extending a stolen token's life.
 */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

export interface TrustedIssuerOptions {
  /** Exact `iss` value, e.g. `https://kubernetes.default.svc.cluster.local`. */
  readonly issuer: string;
  /** The `aud` value(s) naming this service for this issuer; a token must carry one of them. Default `provsec`. */
  readonly audience?: string | readonly string[];
  readonly jwks: JwksSource;
  /**
   * If set, the token's `typ` header must equal it (compared case-insensitively, `application/`
   * optional), e.g. `at+jwt` for RFC 9068 access tokens. If unset, `typ` may be absent, `JWT` or
   * `at+jwt`; anything else (an ID token typed as such, a logout or DPoP token) is refused.
   */
  readonly requiredType?: string;
}

export interface TokenVerifierOptions {
  /** At least one. The single-issuer variables (AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_*) map to one entry. */
  readonly issuers: readonly TrustedIssuerOptions[];
  /** Refuse tokens with exp - iat above this (AUTH_MAX_TOKEN_LIFETIME). Default 3600. */
  readonly maxTokenLifetimeSeconds?: number;
  /** Default 30; at most 300. */
  readonly clockToleranceSeconds?: number;
  /** The clock, for tests. */
  readonly now?: () => Date;
}

export interface TokenVerifier {
  /** Resolves to the caller's identity, or rejects with AuthenticationError. */
  verify(bearerToken: string): Promise<Principal>;
}

const UNTYPED_ACCESS_TOKEN_TYPES = new Set(['jwt', 'at+jwt']);

interface TrustedIssuer {
  readonly issuer: string;
  readonly audiences: string[];
  readonly requiredType: string | undefined;
  readonly resolveKey: ReturnType<typeof createKeyResolver>;
}

/** Builds the verifier; reads JWKS files now, so a bad one stops start-up with AuthConfigError. */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const maxTokenLifetimeSeconds = options.maxTokenLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
  const clockToleranceSeconds = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const now = options.now ?? (() => new Date());
  needs(
    options.issuers.length > 0,
    () => new AuthConfigError('at least one trusted issuer is required (no issuer means no one can call)'),
  );
  needs(
    Number.isInteger(maxTokenLifetimeSeconds) && maxTokenLifetimeSeconds > 0,
    () => new AuthConfigError('max token lifetime must be a positive whole number of seconds'),
  );
  needs(
    Number.isInteger(clockToleranceSeconds) && clockToleranceSeconds >= 0 && clockToleranceSeconds <= 300,
    () => new AuthConfigError('clock tolerance must be 0..300 seconds'),
  );

  const trustedIssuers = new Map<string, TrustedIssuer>();
  for (const trusted of options.issuers) {
    needs(
      trusted.issuer.trim() !== '' && trusted.issuer === trusted.issuer.trim(),
      () => new AuthConfigError('a trusted issuer must be a non-empty string without surrounding spaces'),
    );
    // Two entries for one iss would make the choice of key set depend on list order.
    needs(!trustedIssuers.has(trusted.issuer), () => new AuthConfigError(`issuer ${trusted.issuer} is listed twice`));
    const audiences =
      typeof trusted.audience === 'string' ? [trusted.audience] : [...(trusted.audience ?? [DEFAULT_AUDIENCE])];
    needs(
      audiences.length > 0 && audiences.every((audience) => audience !== ''),
      () => new AuthConfigError(`issuer ${trusted.issuer}: audience must not be empty`),
    );
    trustedIssuers.set(trusted.issuer, {
      issuer: trusted.issuer,
      audiences,
      requiredType: trusted.requiredType === undefined ? undefined : normalizeType(trusted.requiredType),
      resolveKey: createKeyResolver(trusted.jwks, `issuer ${trusted.issuer}`),
    });
  }

  return {
    async verify(bearerToken: string): Promise<Principal> {
      const { header, unverifiedClaims } = inspectCompactToken(bearerToken);
      const claimedIssuer = unverifiedClaims.iss;
      needs(claimedIssuer !== undefined, () => new AuthenticationError('missing_claim', 'iss'));
      // Only configured issuers are candidates: an unknown iss never makes us fetch anything.
      const trusted = typeof claimedIssuer === 'string' ? trustedIssuers.get(claimedIssuer) : undefined;
      needs(trusted !== undefined, () => new AuthenticationError('wrong_issuer'));
      checkType(header.typ as string | undefined, trusted.requiredType);

      const currentDate = now();
      let verifiedClaims: JWTPayload;
      try {
        ({ payload: verifiedClaims } = await jwtVerify(bearerToken, trusted.resolveKey, {
          algorithms: [...ALLOWED_ALGORITHMS],
          issuer: trusted.issuer,
          audience: trusted.audiences,
          requiredClaims: ['exp', 'iat', 'sub'],
          clockTolerance: clockToleranceSeconds,
          currentDate,
        }));
      } catch (error) {
        throw authenticationErrorFrom(error);
      }
      return principalFromVerifiedClaims(trusted.issuer, verifiedClaims, {
        nowSeconds: Math.floor(currentDate.getTime() / 1000),
        clockToleranceSeconds,
        maxTokenLifetimeSeconds,
      });
    },
  };
}

/** Explicit typing (RFC 8725 3.11) keeps other kinds of JWT from this issuer from passing as access tokens. */
function checkType(typ: string | undefined, requiredType: string | undefined): void {
  if (requiredType !== undefined) {
    needs(typ !== undefined && normalizeType(typ) === requiredType, () => new AuthenticationError('wrong_type'));
    return;
  }
  needs(
    typ === undefined || UNTYPED_ACCESS_TOKEN_TYPES.has(normalizeType(typ)),
    () => new AuthenticationError('wrong_type'),
  );
}

function normalizeType(typ: string): string {
  return typ.toLowerCase().replace(/^application\//, '');
}
