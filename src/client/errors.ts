/**
 * The client's one error class and its exit codes. Messages name what went wrong and never carry
 * the secret, the token or key material: the CLI prints them to stderr as they are.
 */

export const EXIT_CODES = {
  ok: 0,
  /** Bad arguments or configuration (missing token file, unreadable key, untrusted certificate). */
  usage: 2,
  /** 401 or 403: the token is refused, or does not grant this read. */
  refused: 3,
  /** 404: no such device group. */
  notFound: 4,
  /** The service did not answer usefully before the deadline (429/503/network), or failed (5xx). */
  unavailable: 5,
  /** An answer that does not decrypt, does not match the request, or is a plaintext downgrade. */
  badAnswer: 6,
} as const;

export type ClientErrorKind = Exclude<keyof typeof EXIT_CODES, 'ok'>;

export class SecretClientError extends Error {
  override readonly name = 'SecretClientError';
  constructor(
    readonly kind: ClientErrorKind,
    message: string,
  ) {
    super(message);
  }

  get exitCode(): number {
    return EXIT_CODES[this.kind];
  }
}

export const usageError = (message: string) => new SecretClientError('usage', message);
export const badAnswer = (message: string) => new SecretClientError('badAnswer', message);
