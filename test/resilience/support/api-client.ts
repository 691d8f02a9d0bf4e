/**
 * A small HTTP client for resilience tests, on node:http with a keep-alive agent (thousands of
 * requests in seconds). It never throws for a network failure: a refused or reset connection is an
 * outcome the tests classify, like a status code. Every response body goes to the leak evidence.
 */
import { randomBytes } from 'node:crypto';
import {
  Agent,
  request,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import type { LeakEvidence } from '../../support/leak-sweep';

export type Outcome =
  | { readonly kind: 'response'; readonly status: number; readonly headers: IncomingHttpHeaders; readonly body: string }
  | { readonly kind: 'network-error'; readonly code: string };

/** A fresh provision secret, tagged so a leak finding says which test stored it. */
export function newSecret(tag: string): string {
  return `ps-${tag}-${randomBytes(16).toString('hex')}`;
}

export function is2xx(outcome: Outcome): boolean {
  return outcome.kind === 'response' && outcome.status >= 200 && outcome.status < 300;
}

export interface SendOptions {
  readonly token?: string;
  /** Sent as application/json. */
  readonly json?: unknown;
  /** Sent as is (with whatever content-type `headers` names). */
  readonly body?: string | Buffer;
  readonly headers?: OutgoingHttpHeaders;
  readonly timeoutMs?: number;
}

export interface ApiClient {
  send(method: string, path: string, options?: SendOptions): Promise<Outcome>;
  close(): void;
}

export function apiClient(
  baseUrl: string,
  options: { evidence?: LeakEvidence; keepAlive?: boolean; maxSockets?: number } = {},
): ApiClient {
  const agent = new Agent({ keepAlive: options.keepAlive ?? true, maxSockets: options.maxSockets ?? 16 });
  const base = new URL(baseUrl);
  return {
    send(method, path, sendOptions = {}) {
      const headers: OutgoingHttpHeaders = {};
      let body: string | Buffer | undefined = sendOptions.body;
      if (sendOptions.json !== undefined) {
        body = JSON.stringify(sendOptions.json);
        headers['content-type'] = 'application/json';
      }
      if (sendOptions.token !== undefined) headers.authorization = `Bearer ${sendOptions.token}`;
      Object.assign(headers, sendOptions.headers);
      if (body !== undefined && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined)
        headers['content-length'] = Buffer.byteLength(body);
      return new Promise<Outcome>((resolve) => {
        const onResponse = (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error: NodeJS.ErrnoException) =>
            resolve({ kind: 'network-error', code: error.code ?? error.message }),
          );
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            options.evidence?.response(method, path, res.statusCode ?? 0, text);
            resolve({ kind: 'response', status: res.statusCode ?? 0, headers: res.headers, body: text });
          });
        };
        let req: ClientRequest;
        try {
          // The path goes out byte for byte (no URL normalisation), so tests can send odd ones.
          req = request(
            {
              host: base.hostname,
              port: base.port,
              path,
              method,
              headers,
              agent,
              timeout: sendOptions.timeoutMs ?? 15_000,
            },
            onResponse,
          );
        } catch (error) {
          // Node refused to send it at all (e.g. an unescaped path): a bug in the test's request.
          resolve({ kind: 'network-error', code: `NOT_SENT_${(error as NodeJS.ErrnoException).code ?? 'UNKNOWN'}` });
          return;
        }
        req.on('timeout', () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
        req.on('error', (error: NodeJS.ErrnoException) =>
          resolve({ kind: 'network-error', code: error.code ?? error.message }),
        );
        req.end(body);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/** Why an outcome is not a clean RFC 9457 problem with `status`, or undefined when it is one. */
/**
 * A worker's read of one of `ids`, picked by worker and iteration so the workers spread over the
 * groups, and whether a 200 carried a secret `accepts` refuses: a wrong secret is the one outcome
 * a resilience test must never see, whatever else fails.
 */
export async function readOneOf(
  client: ApiClient,
  token: string,
  ids: readonly string[],
  turn: { readonly workerIndex: number; readonly iteration: number },
  accepts: (id: string, provisionSecret: string) => boolean,
): Promise<{ id: string; outcome: Outcome; wrongSecret: boolean }> {
  const id = ids[(turn.workerIndex * 7919 + turn.iteration) % ids.length] as string;
  const outcome = await client.send('GET', `/v1/device-groups/${id}/provision-secret`, { token });
  const wrongSecret =
    outcome.kind === 'response' &&
    outcome.status === 200 &&
    !accepts(id, (JSON.parse(outcome.body) as { provisionSecret: string }).provisionSecret);
  return { id, outcome, wrongSecret };
}

export function problemDefect(outcome: Outcome, status: number): string | undefined {
  if (outcome.kind !== 'response') return `no response (${outcome.code})`;
  if (outcome.status !== status) return `status ${outcome.status}, expected ${status}`;
  const contentType = String(outcome.headers['content-type'] ?? '');
  if (!contentType.startsWith('application/problem+json')) return `content-type ${contentType}`;
  let problem: Record<string, unknown>;
  try {
    problem = JSON.parse(outcome.body) as Record<string, unknown>;
  } catch {
    return 'body is not JSON';
  }
  if (
    problem.status !== status ||
    typeof problem.type !== 'string' ||
    typeof problem.title !== 'string' ||
    typeof problem.detail !== 'string'
  )
    return 'body is not a problem document';
  // A stack trace or a library's raw message in a body tells an attacker about our internals.
  if ('stack' in problem || /\n\s+at |node_modules|\.ts:\d+/.test(outcome.body)) return 'body carries a stack trace';
  return undefined;
}

export function statusOf(outcome: Outcome): number | string {
  return outcome.kind === 'response' ? outcome.status : outcome.code;
}

/** Runs `count` concurrent loops of `step` until `shouldStop()` says so. */
export async function runWorkers(
  count: number,
  shouldStop: () => boolean,
  step: (worker: number, iteration: number) => Promise<void>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, async (_, worker) => {
      for (let iteration = 0; !shouldStop(); iteration += 1) await step(worker, iteration);
    }),
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` every 25 ms until it holds, or fails with `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(25);
  }
}
