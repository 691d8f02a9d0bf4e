/**
 * Reads the token out of an `Authorization: Bearer` header (RFC 6750 section 2.1). This is the only
 * place a token is accepted from: never a query parameter or a cookie (RFC 6750 section 5.3, RFC 8725).
 */
import { AuthenticationError } from './errors';
import { needs } from '../crypto/needs';

/** Generous for RS4096 + Kubernetes claims, small enough that a header cannot make us parse megabytes. */
export const MAX_BEARER_TOKEN_LENGTH = 8192;

// RFC 6750 b64token. A compact JWT uses only [A-Za-z0-9_-] and dots; the stricter check is in compact-token.ts.
const B64_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

export function parseBearerHeader(headerValue: string | undefined): string {
  needs(headerValue !== undefined && headerValue.trim() !== '', () => new AuthenticationError('missing_token'));
  needs(
    headerValue.length <= MAX_BEARER_TOKEN_LENGTH + 'Bearer '.length,
    () => new AuthenticationError('malformed', 'authorization header too long'),
  );
  // The auth-scheme is case-insensitive (RFC 9110 section 11.1); exactly one space, then one token.
  const match = /^Bearer ([^ ]*)$/i.exec(headerValue);
  needs(match !== null, () => new AuthenticationError('malformed', 'authorization header is not "Bearer <token>"'));
  const token = match[1] ?? '';
  needs(token !== '', () => new AuthenticationError('missing_token'));
  needs(
    B64_TOKEN.test(token),
    () => new AuthenticationError('malformed', 'bearer token has characters outside b64token'),
  );
  return token;
}
