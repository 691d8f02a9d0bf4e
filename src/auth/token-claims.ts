/**
 * Checks jose leaves to the caller, run on a payload whose signature, iss, aud, exp and nbf jose
 * has already verified: times are sane numbers, the token does not claim to come from the future,
 * and its whole lifetime (exp - iat) is short. Long-lived bearer credentials are what the project's
 * seeds argue against: a leaked token must expire soon whatever the issuer chose.
 */
import type { JWTPayload } from 'jose';
import { AuthenticationError } from './errors';
import type { Principal } from './principal';
import { needs } from '../crypto/needs';

/** 9999-12-31T23:59:59Z: a NumericDate beyond this is a crafted value, not a time. */
const LATEST_NUMERIC_DATE = 253_402_300_799;
const MAX_SUBJECT_LENGTH = 512;

export interface ClaimLimits {
  readonly nowSeconds: number;
  readonly clockToleranceSeconds: number;
  readonly maxTokenLifetimeSeconds: number;
}

export function principalFromVerifiedClaims(issuer: string, claims: JWTPayload, limits: ClaimLimits): Principal {
  const exp = numericDate(claims.exp, 'exp');
  const iat = numericDate(claims.iat, 'iat');
  if (claims.nbf !== undefined) numericDate(claims.nbf, 'nbf');
  // A token "issued" in the future would stretch its usable life past exp - iat.
  needs(iat <= limits.nowSeconds + limits.clockToleranceSeconds, () => new AuthenticationError('issued_in_future'));
  needs(exp > iat, () => new AuthenticationError('invalid_claim', 'exp not after iat'));
  needs(exp - iat <= limits.maxTokenLifetimeSeconds, () => new AuthenticationError('lifetime_too_long'));
  const subject = claims.sub;
  needs(
    typeof subject === 'string' && subject.length > 0 && subject.length <= MAX_SUBJECT_LENGTH,
    () => new AuthenticationError('invalid_claim', 'sub'),
  );
  // Policy subjects are printable; a control character in sub is an attempt to forge log lines.
  needs(!/\p{Cc}/u.test(subject), () => new AuthenticationError('invalid_claim', 'sub'));
  return Object.freeze({ issuer, subject, expiresAt: new Date(exp * 1000) });
}

function numericDate(value: unknown, claim: string): number {
  needs(value !== undefined, () => new AuthenticationError('missing_claim', claim));
  needs(
    typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= LATEST_NUMERIC_DATE,
    () => new AuthenticationError('invalid_claim', claim),
  );
  return value;
}
