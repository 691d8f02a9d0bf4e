/**
 * A small reverse proxy in front of the real test service, standing where a mesh sidecar or load
 * balancer would. It counts requests,
 * records every answer it passes on (for the leak sweep), and can answer or rewrite in between:
 * the faults and attacks the client must handle.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Return an answer to send instead of forwarding, or undefined to forward. */
export type Interceptor = (path: string, requestNumber: number) => ProxiedAnswer | undefined;
/** Rewrite what the service answered before passing it on. */
export type Rewriter = (path: string, answer: ProxiedAnswer) => ProxiedAnswer;

export interface FrontProxy {
  readonly url: string;
  /** Requests seen since the last reset. */
  requests(): number;
  /** Every answer passed on, as the client received it. */
  readonly answers: Array<{ path: string; status: number; body: string }>;
  intercept(interceptor: Interceptor | undefined): void;
  rewrite(rewriter: Rewriter | undefined): void;
  reset(): void;
  close(): Promise<void>;
}

export async function startFrontProxy(upstreamUrl: string): Promise<FrontProxy> {
  const upstream = new URL(upstreamUrl);
  let count = 0;
  let interceptor: Interceptor | undefined;
  let rewriter: Rewriter | undefined;
  const answers: FrontProxy['answers'] = [];

  const send = (res: ServerResponse, path: string, answer: ProxiedAnswer) => {
    answers.push({ path, status: answer.status, body: answer.body });
    res.writeHead(answer.status, answer.headers).end(answer.body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    count += 1;
    const path = req.url ?? '/';
    const injected = interceptor?.(path, count);
    if (injected !== undefined) {
      send(res, path, injected);
      return;
    }
    const forwarded = request(
      { host: upstream.hostname, port: upstream.port, path, method: req.method, headers: req.headers },
      (upstreamRes) => {
        const chunks: Buffer[] = [];
        upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        upstreamRes.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(upstreamRes.headers))
            if (
              typeof value === 'string' &&
              !['content-length', 'connection', 'transfer-encoding', 'keep-alive'].includes(name)
            )
              headers[name] = value;
          const answer = {
            status: upstreamRes.statusCode ?? 502,
            headers,
            body: Buffer.concat(chunks).toString('utf8'),
          };
          send(res, path, rewriter === undefined ? answer : rewriter(path, answer));
        });
      },
    );
    forwarded.on('error', () => send(res, path, { status: 502, headers: {}, body: '' }));
    req.pipe(forwarded);
  };

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => count,
    answers,
    intercept: (next) => {
      interceptor = next;
    },
    rewrite: (next) => {
      rewriter = next;
    },
    reset: () => {
      count = 0;
      interceptor = undefined;
      rewriter = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
