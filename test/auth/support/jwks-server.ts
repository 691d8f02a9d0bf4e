/** A real HTTP server on loopback serving key sets, counting every request per path. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServedDocument {
  status?: number;
  body: unknown;
  /** Wait this long before answering (to test fetch timeouts). */
  delayMs?: number;
}

export interface JwksServer {
  readonly origin: string;
  serve(path: string, document: ServedDocument): void;
  hits(path: string): number;
  lastHeaders(path: string): IncomingHttpHeaders | undefined;
  close(): Promise<void>;
}

export async function startJwksServer(): Promise<JwksServer> {
  const documents = new Map<string, ServedDocument>();
  const hitCounts = new Map<string, number>();
  const headersSeen = new Map<string, IncomingHttpHeaders>();
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    hitCounts.set(path, (hitCounts.get(path) ?? 0) + 1);
    headersSeen.set(path, request.headers);
    const document = documents.get(path);
    const answer = () => {
      if (!document) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(document.status ?? 200, { 'content-type': 'application/json' });
      response.end(typeof document.body === 'string' ? document.body : JSON.stringify(document.body));
    };
    if (document?.delayMs) setTimeout(answer, document.delayMs);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    serve: (path, document) => documents.set(path, document),
    hits: (path) => hitCounts.get(path) ?? 0,
    lastHeaders: (path) => headersSeen.get(path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
