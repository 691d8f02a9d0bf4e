/** Turns whatever jose (or our key resolver) threw while verifying into one AuthenticationError reason. */
import { errors as joseErrors } from 'jose';
import { AuthenticationError, type AuthFailureReason } from './errors';
import { KeySetUnavailableError } from './key-sets';

const CLAIM_CHECK_REASONS: Readonly<Record<string, AuthFailureReason>> = {
  iss: 'wrong_issuer',
  aud: 'wrong_audience',
  nbf: 'not_yet_valid',
  exp: 'expired',
};

export function authenticationErrorFrom(error: unknown): AuthenticationError {
  if (error instanceof AuthenticationError) return error;
  if (error instanceof KeySetUnavailableError) return new AuthenticationError('jwks_unavailable', error.causeName);
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return new AuthenticationError('missing_claim', error.claim);
    if (error.reason === 'invalid') return new AuthenticationError('invalid_claim', error.claim);
    return new AuthenticationError(CLAIM_CHECK_REASONS[error.claim] ?? 'invalid_claim', error.claim);
  }
  if (error instanceof joseErrors.JWTExpired) return new AuthenticationError('expired');
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return new AuthenticationError('algorithm_not_allowed');
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new AuthenticationError('bad_signature');
  if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys)
    return new AuthenticationError('unknown_key');
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid)
    return new AuthenticationError('malformed', error.code);
  // Fail closed on anything unforeseen; the detail (a class or code name, never a message) tells the log what.
  const name = error instanceof joseErrors.JOSEError ? error.code : error instanceof Error ? error.name : typeof error;
  return new AuthenticationError('invalid_token', name);
}
