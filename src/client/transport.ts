/**
 * One GET over http or https with node's own client. With a CA file, https trusts exactly that CA
 * (the agent's `ca` replaces the system list); certificate verification is never turned off.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Secret answers are a few KiB; anything far larger is not one of ours. */
const MAX_BODY_BYTES = 256 * 1024;

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface GetOptions {
  readonly headers: Record<string, string>;
  /** PEM text of the CA that signs the service's certificate (https only). */
  readonly ca: string | undefined;
  readonly timeoutMs: number;
}

/** A failure before any HTTP answer: `tls` when the certificate was not trusted, else `network`. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly kind: 'tls' | 'network',
    message: string,
  ) {
    super(message);
  }
}

const TLS_ERROR_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
]);

export function httpGet(url: URL, options: GetOptions): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const common = { method: 'GET', headers: options.headers, timeout: options.timeoutMs };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, {
            ...common,
            ...(options.ca === undefined ? {} : { ca: options.ca }),
            rejectUnauthorized: true,
          })
        : httpRequest(url, common);
    req.on('timeout', () => req.destroy(new TransportError('network', `no answer within ${options.timeoutMs} ms`)));
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof TransportError) reject(error);
      else if (error.code !== undefined && TLS_ERROR_CODES.has(error.code))
        reject(new TransportError('tls', `the service's TLS certificate is not trusted (${error.code})`));
      else reject(new TransportError('network', `cannot reach ${url.origin} (${error.code ?? error.message})`));
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) req.destroy(new TransportError('network', 'answer larger than expected'));
        else chunks.push(chunk);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', (error) => reject(new TransportError('network', `answer interrupted (${error.message})`)));
    });
    req.end();
  });
}
