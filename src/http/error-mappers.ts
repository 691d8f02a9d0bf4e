/** The service's typed errors as HTTP problems: the caller's mistakes are 4xx, ours 5xx. */
import { CryptoError, SecretTooLargeError, InvalidBindingContextError } from '../crypto';
import {
  DeviceGroupConflictError,
  DeviceGroupNotFoundError,
  KeyringNotLoadedError,
  StoredSecretUnreadableError,
} from '../service/errors';
import type { ErrorMapper } from './error-handler';
import { HttpProblem, problems } from './problem';

export const serviceErrorMapper: ErrorMapper = (error) => {
  if (error instanceof DeviceGroupNotFoundError) return problems.notFound('No device group with this id.');
  if (error instanceof DeviceGroupConflictError) return problems.conflict(error.message);
  if (error instanceof KeyringNotLoadedError) return problems.unavailable('No key-encryption key is loaded yet.');
  if (error instanceof StoredSecretUnreadableError) {
    // The stored data (or its KEK) is wrong: a server-side fault, logged and audited, no plaintext.
    return new HttpProblem(
      500,
      'stored-secret-unreadable',
      'Stored Secret Unreadable',
      `The stored provision secret cannot be opened (${error.reason}).`,
    );
  }
  // Validation should have caught these first; if not, they are still the caller's input.
  if (error instanceof SecretTooLargeError || error instanceof InvalidBindingContextError)
    return problems.badRequest(error.message);
  if (error instanceof CryptoError) return problems.internal();
  if (isDatabaseUnavailable(error)) return problems.unavailable('The database is unavailable; retry shortly.');
  return undefined;
};

/** Connection-level failures (server restarting, pool timeout): retryable, so 503, not 500. */
function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  const message = (error as Error | null)?.message ?? '';
  if (code !== undefined && /^(08|57P0[1-3]|53300|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT)/.test(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED/.test(
    message,
  );
}
