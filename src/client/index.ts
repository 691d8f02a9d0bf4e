/**
 * `provsec/client`: the certificate worker's client for provsec. It depends on node, jose and the
 * wire contract in src/protocol only, never on the service's own modules.
 */
export { createSecretClient, DEFAULT_TIMEOUT_MS, DEFAULT_URL } from './secret-client';
export type { SecretClient, SecretClientOptions } from './secret-client';
export { EXIT_CODES, SecretClientError, type ClientErrorKind } from './errors';
export { generateRecipientKey } from './keygen';
export { loadRecipientKey, type RecipientPrivateKey } from './recipient-key-file';
export { runCli, USAGE, type CliIo } from './cli';
export type { ProvisionSecretAnswer } from '../protocol/secret-answer';
