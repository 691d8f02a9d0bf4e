/**
 * The HTTP(S) listener and its graceful stop: refuse new connections, let in-flight requests finish
 * (bounded by the drain timeout), then cut whatever is left. With a serving certificate it speaks
 * only TLS, and a renewed certificate is swapped in for new connections without cutting any.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import type { CertificatePair } from '../tls/certificate-pair';
import { secureContextOptions } from '../tls/server-tls-options';

/** What the listener needs of the serving certificate (src/tls/serving-certificate.ts). */
export interface ListenerCertificate {
  current(): CertificatePair;
  onRenewal(listener: (pair: CertificatePair) => void): void;
}

export interface RunningServer {
  readonly server: Server;
  readonly port: number;
  /** Stops accepting, waits up to `drainTimeoutMs` for in-flight requests; true if all finished. */
  close(drainTimeoutMs: number): Promise<boolean>;
}

export async function listen(
  handler: RequestListener,
  options: { host: string; port: number; certificate?: ListenerCertificate },
): Promise<RunningServer> {
  const { certificate } = options;
  let server: Server;
  if (certificate === undefined) server = createServer(handler);
  else {
    const httpsServer = createHttpsServer(secureContextOptions(certificate.current()), handler);
    // setSecureContext affects only handshakes that start afterwards: open connections keep theirs.
    certificate.onRenewal((pair) => httpsServer.setSecureContext(secureContextOptions(pair)));
    server = httpsServer;
  }
  // Slowloris bounds: a client must send its headers and body within these windows.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  const idleWaiters: Array<() => void> = [];
  server.on('request', (_req, res) => {
    inFlight.add(res);
    if (closing) res.setHeader('Connection', 'close');
    res.on('close', () => {
      inFlight.delete(res);
      if (inFlight.size === 0) idleWaiters.splice(0).forEach((wake) => wake());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  async function close(drainTimeoutMs: number): Promise<boolean> {
    closing = true;
    // Requests still running answer with Connection: close, so no client sends another request on a
    // kept-alive connection that closeAllConnections() is about to cut (it would see ECONNRESET).
    for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive connections with no request in flight would otherwise hold close() open.
    server.closeIdleConnections();
    const drained =
      inFlight.size === 0
        ? Promise.resolve(true)
        : new Promise<boolean>((resolve) => idleWaiters.push(() => resolve(true)));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), drainTimeoutMs);
    });
    const finished = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    server.closeAllConnections();
    await closed;
    return finished;
  }

  return { server, port, close };
}
