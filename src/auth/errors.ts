/**
 * The auth module's error classes. No message ever carries a token, a claim value from a token, or
 * key material: the HTTP layer may log them as they are and sends callers only a generic reason.
 */

/**
 * Why a bearer token was refused: a short, stable code for logs and the auth-failure metric.
 * `jwks_unavailable` is the one that is our fault (the key set could not be fetched or is broken);
 * every other reason is the caller's.
 */
export const AUTH_FAILURE_REASONS = [
  'missing_token',
  'malformed',
  'forbidden_header',
  'unsupported_critical_header',
  'algorithm_not_allowed',
  'unknown_key',
  'bad_signature',
  'wrong_issuer',
  'wrong_audience',
  'wrong_type',
  'missing_claim',
  'invalid_claim',
  'expired',
  'not_yet_valid',
  'issued_in_future',
  'lifetime_too_long',
  'invalid_token',
  'jwks_unavailable',
] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/** A bearer token was missing or refused. The HTTP layer answers 401 (503 if `serverFault`). */
export class AuthenticationError extends Error {
  /** True when the token could not be checked for a reason of ours (key set unreachable). */
  readonly serverFault: boolean;

  constructor(
    readonly reason: AuthFailureReason,
    /** A safe detail for the log (which claim, which header), never a value from the token. */
    readonly detail?: string,
  ) {
    super(detail === undefined ? `bearer token refused: ${reason}` : `bearer token refused: ${reason} (${detail})`);
    this.name = 'AuthenticationError';
    this.serverFault = reason === 'jwks_unavailable';
  }
}

/** The access policy file is unusable. Raised at start-up; the message names the problem in one line. */
export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

/** The trusted-issuer configuration is unusable (bad JWKS file, plain-http key set URL, ...). Start-up only. */
export class AuthConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthConfigError';
  }
}

/** A dev-only shortcut (the dev token signer) was asked for with NODE_ENV=production. */
export class DevModeRefusedError extends Error {
  constructor(what: string) {
    super(`${what} is refused when NODE_ENV=production (dev signing keys must never be trusted in production)`);
    this.name = 'DevModeRefusedError';
  }
}
