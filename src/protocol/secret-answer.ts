/**
 * The wire contract of GET /v1/device-groups/{id}/provision-secret, shared by the service and the
 * worker client (src/client). It imports nothing: the client must not pull in any server module.
 *
 * An answer is either plaintext JSON (a rule without a recipientKey) or a compact JWE encrypted to
 * the worker's registered public key, whose plaintext is exactly the JSON answer.
 */

export const JSON_MEDIA_TYPE = 'application/json';
/** RFC 7516 section 9: the media type of a JWE in compact serialization. */
export const JWE_MEDIA_TYPE = 'application/jose';

/** Key agreement with an ephemeral key, then AES key wrap: only the recipient's private key opens it. */
export const SECRET_JWE_ALG = 'ECDH-ES+A256KW';
export const SECRET_JWE_ENC = 'A256GCM';

/**
 * Private protected-header parameters (RFC 7516 section 4.3, names prefixed to avoid collisions):
 * which group and secret version the JWE holds. Protected means authenticated as the AES-GCM
 * associated data, so a client can check them before decrypting and trust them after.
 */
export const GROUP_HEADER_PARAMETER = 'provsec.group';
export const VERSION_HEADER_PARAMETER = 'provsec.ver';

/**
 * Request header naming which of the worker's registered keys to encrypt to: the RFC 7638 SHA-256
 * thumbprint of its public key. Needed while two keys are registered (key rotation); without it
 * the service uses the first key in policy order.
 */
export const RECIPIENT_THUMBPRINT_HEADER = 'Provsec-Recipient-Thumbprint';
/** A base64url SHA-256 digest: 43 characters, no padding. */
export const THUMBPRINT_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The JSON answer, and the plaintext of a JWE answer. */
export interface ProvisionSecretAnswer {
  readonly id: string;
  readonly provisionSecret: string;
  readonly secretVersion: number;
}
