/** The auth module: who is calling (token-verifier) and what they may do (access-policy). */
export { AccessPolicy, type PolicyOptions } from './access-policy';
export { parseBearerHeader } from './bearer-header';
export { ALLOWED_ALGORITHMS } from './compact-token';
export { DEV_ISSUER, devTrustedIssuer, ensureDevSigner, type DevSigner, type DevSignerOptions } from './dev-signer';
export {
  AuthConfigError,
  AuthenticationError,
  DevModeRefusedError,
  PolicyError,
  type AuthFailureReason,
} from './errors';
export { GROUP_ID_PATTERN } from './group-glob';
export { JWKS_DEFAULTS, type JwksSource } from './key-sets';
export { PERMISSIONS, type Permission } from './permissions';
export type { Principal } from './principal';
export type { RecipientKey } from './recipient-key';
export {
  createTokenVerifier,
  DEFAULT_AUDIENCE,
  DEFAULT_CLOCK_TOLERANCE_SECONDS,
  DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
  type TokenVerifier,
  type TokenVerifierOptions,
  type TrustedIssuerOptions,
} from './token-verifier';
