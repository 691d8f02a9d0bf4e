/**
 * Reads one group's provision secret for a certificate worker: the token file is read again for
 * every attempt (the kubelet rotates projected tokens), 429 and 503 are retried per retry.ts up to
 * the deadline, 401/403/404 never are, and the answer is checked by answer.ts before it is returned.
 */
import { readFile } from 'node:fs/promises';
import {
  RECIPIENT_THUMBPRINT_HEADER,
  JWE_MEDIA_TYPE,
  JSON_MEDIA_TYPE,
  type ProvisionSecretAnswer,
} from '../protocol/secret-answer';
import { openAnswer } from './answer';
import { SecretClientError, usageError } from './errors';
import { loadRecipientKey, type RecipientPrivateKey } from './recipient-key-file';
import { RETRYABLE_STATUSES, retryAfterMs, retryDelayMs } from './retry';
import { httpGet, TransportError, type HttpAnswer } from './transport';

export const DEFAULT_URL = 'http://127.0.0.1:8080';
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface SecretClientOptions {
  /** PROVSEC_URL: the service's base URL. */
  readonly url: string;
  /** PROVSEC_TOKEN_FILE: a bearer token, read again before every request. */
  readonly tokenFile: string;
  /** PROVSEC_CA_FILE: trust exactly this CA for https. */
  readonly caFile?: string | undefined;
  /** PROVSEC_RECIPIENT_KEY_FILE: the worker's private key; when set, only encrypted answers are accepted. */
  readonly recipientKeyFile?: string | undefined;
  /** Deadline for the whole read, retries included. */
  readonly timeoutMs?: number;
  /** Told about each retry (the CLI prints it to stderr); never given the secret or the token. */
  readonly onRetry?: (notice: string) => void;
  /** Injected for tests; defaults to Math.random and real sleeping. */
  readonly random?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface SecretClient {
  readProvisionSecret(groupId: string): Promise<ProvisionSecretAnswer>;
}

export async function createSecretClient(options: SecretClientOptions): Promise<SecretClient> {
  const base = parseBaseUrl(options.url);
  if (options.caFile !== undefined && base.protocol !== 'https:')
    throw usageError('a CA file (PROVSEC_CA_FILE) only applies to an https:// PROVSEC_URL');
  const ca = options.caFile === undefined ? undefined : await readConfigFile(options.caFile, 'CA file');
  const key = options.recipientKeyFile === undefined ? undefined : await loadRecipientKey(options.recipientKeyFile);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  return {
    async readProvisionSecret(groupId) {
      if (groupId === '') throw usageError('a group id is required');
      const url = new URL(`v1/device-groups/${encodeURIComponent(groupId)}/provision-secret`, base);
      const deadline = Date.now() + timeoutMs;
      for (let attempt = 0; ; attempt += 1) {
        const remainingMs = deadline - Date.now();
        if (remainingMs <= 0) throw new SecretClientError('unavailable', `no answer within ${timeoutMs} ms`);
        let answer: HttpAnswer;
        try {
          answer = await httpGet(url, {
            headers: await requestHeaders(options.tokenFile, key),
            ca,
            timeoutMs: remainingMs,
          });
        } catch (error) {
          if (!(error instanceof TransportError)) throw error;
          if (error.kind === 'tls') throw usageError(`${error.message}; check PROVSEC_CA_FILE and PROVSEC_URL`);
          await waitOrGiveUp(error.message, undefined, attempt, deadline);
          continue;
        }
        if (answer.status === 200) return openAnswer(answer, groupId, key);
        if (!RETRYABLE_STATUSES.has(answer.status)) throw errorFor(answer, groupId);
        const retryAfter = retryAfterMs(header(answer, 'retry-after'), Date.now());
        await waitOrGiveUp(`the service answered ${answer.status}`, retryAfter, attempt, deadline);
      }
    },
  };

  async function waitOrGiveUp(why: string, retryAfter: number | undefined, attempt: number, deadline: number) {
    const delayMs = retryDelayMs(retryAfter, attempt, random);
    if (Date.now() + delayMs >= deadline)
      throw new SecretClientError(
        'unavailable',
        `${why}; giving up after ${attempt + 1} attempt${attempt === 0 ? '' : 's'} (the next retry, in ${delayMs} ms, would pass the ${timeoutMs} ms timeout)`,
      );
    options.onRetry?.(`${why}; retrying in ${delayMs} ms`);
    await sleep(delayMs);
  }
}

async function requestHeaders(
  tokenFile: string,
  key: RecipientPrivateKey | undefined,
): Promise<Record<string, string>> {
  const token = (await readConfigFile(tokenFile, 'token file')).trim();
  if (token === '') throw usageError(`token file ${tokenFile} is empty`);
  return {
    Authorization: `Bearer ${token}`,
    Accept: key === undefined ? JSON_MEDIA_TYPE : JWE_MEDIA_TYPE,
    ...(key === undefined ? {} : { [RECIPIENT_THUMBPRINT_HEADER]: key.thumbprint }),
  };
}

function parseBaseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`PROVSEC_URL ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usageError('PROVSEC_URL must be http:// or https://');
  if (url.username !== '' || url.password !== '') throw usageError('PROVSEC_URL must not carry credentials');
  if (!url.pathname.endsWith('/')) url.pathname = `${url.pathname}/`;
  return url;
}

async function readConfigFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw usageError(`${what} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function header(answer: HttpAnswer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A non-retryable refusal, with the service's problem title and request id (never a secret). */
function errorFor(answer: HttpAnswer, groupId: string): SecretClientError {
  const requestId = header(answer, 'x-request-id');
  const suffix = `${problemSummary(answer.body)}${requestId === undefined ? '' : ` (request id ${requestId})`}`;
  if (answer.status === 401) return new SecretClientError('refused', `401: the token was refused${suffix}`);
  if (answer.status === 403)
    return new SecretClientError('refused', `403: this identity may not read ${groupId}${suffix}`);
  if (answer.status === 404) return new SecretClientError('notFound', `404: no device group ${groupId}${suffix}`);
  if (answer.status >= 400 && answer.status < 500)
    return new SecretClientError('usage', `${answer.status}: the service refused the request${suffix}`);
  return new SecretClientError('unavailable', `${answer.status}: the service failed${suffix}`);
}

function problemSummary(body: string): string {
  try {
    const problem = JSON.parse(body) as { title?: unknown; detail?: unknown };
    const parts = [problem.title, problem.detail].filter((part): part is string => typeof part === 'string');
    return parts.length === 0 ? '' : `: ${parts.join(': ').slice(0, 200)}`;
  } catch {
    return '';
  }
}
