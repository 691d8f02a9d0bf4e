/**
 * The HTTPS listener (src/http/server.ts with src/tls/serving-certificate.ts) over real TLS:
 * certificates from a CA made at test time (test/support/test-pki.ts), real files, real sockets.
 */
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Registry } from 'prom-client';
import { listen, type RunningServer } from '../../src/http/server';
import { ServingCertificate } from '../../src/tls/serving-certificate';
import { binaryNeedles } from '../support/leak-sweep';
import { capturedLogger } from '../support/log-capture';
import { CertificateFiles, TestCertificateAuthority, type Issued } from '../support/test-pki';

const HOUR_MS = 3_600_000;

interface Listener {
  readonly server: RunningServer;
  readonly certificate: ServingCertificate;
  readonly registry: Registry;
  readonly logs: () => string;
  readonly tlsClientErrors: string[];
}

async function startListener(files: CertificateFiles, handler = okHandler): Promise<Listener> {
  const registry = new Registry();
  const log = capturedLogger('info');
  const certificate = await ServingCertificate.load(
    { certFile: files.certFile, keyFile: files.keyFile, pollIntervalMs: 250, debounceMs: 50 },
    { logger: log.logger, registry },
  );
  certificate.start();
  const server = await listen(handler, { host: '127.0.0.1', port: 0, certificate });
  const tlsClientErrors: string[] = [];
  server.server.on('tlsClientError', (error: NodeJS.ErrnoException) => tlsClientErrors.push(error.code ?? 'unknown'));
  return { server, certificate, registry, logs: log.text, tlsClientErrors };
}

function okHandler(_req: unknown, res: { end(body: string): void }): void {
  res.end('ok');
}

/** One TLS handshake on a fresh connection; what the client saw. */
function handshake(
  port: number,
  options: ConnectionOptions,
): Promise<{ protocol: string | null; serialNumber: string; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'localhost', ...options }, () => {
      const result = {
        protocol: socket.getProtocol(),
        serialNumber: socket.getPeerX509Certificate()?.serialNumber.toUpperCase() ?? '',
        authorized: socket.authorized,
      };
      socket.end();
      resolve(result);
    });
    socket.on('error', reject);
  });
}

function httpsGet(
  port: number,
  ca: string,
  agent: Agent | false,
): Promise<{ status: number; body: string; serialNumber: string; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', servername: 'localhost', ca, agent }, (res) => {
      let body = '';
      const serialNumber = (res.socket as TLSSocket).getPeerX509Certificate()?.serialNumber.toUpperCase() ?? '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body, serialNumber, socket: res.socket as TLSSocket }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitUntil(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<number> {
  const startedAt = Date.now();
  while (!(await predicate())) {
    if (Date.now() - startedAt > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return Date.now() - startedAt;
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  const value = (metric?.values as { value: number; labels: Record<string, string> }[] | undefined)?.find((entry) =>
    Object.entries(labels).every(([key, expected]) => entry.labels[key] === expected),
  );
  return value?.value ?? Number.NaN;
}

describe('the HTTPS listener', () => {
  const ca = new TestCertificateAuthority();
  const files = new CertificateFiles(ca);
  let first: Issued;
  let listener: Listener;

  beforeAll(async () => {
    first = ca.issue();
    files.replaceByRename(first);
    listener = await startListener(files);
  });
  afterAll(async () => {
    await listener.server.close(1000);
    await listener.certificate.stop();
  });

  test('a client trusting the CA completes the handshake (TLS 1.3) and gets its answer', async () => {
    const result = await handshake(listener.server.port, { ca: ca.certificatePem });
    expect(result).toEqual({ protocol: 'TLSv1.3', serialNumber: first.serialNumber, authorized: true });
    await expect(httpsGet(listener.server.port, ca.certificatePem, false)).resolves.toMatchObject({
      status: 200,
      body: 'ok',
    });
  });

  test('a client that does not trust the CA refuses the certificate (no verification is ever off)', async () => {
    await expect(handshake(listener.server.port, {})).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });

  test('plaintext HTTP to the TLS port gets no HTTP answer', async () => {
    const plaintext = new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: listener.server.port, path: '/', agent: false }, (res) =>
        resolve(res.statusCode ?? 0),
      );
      req.on('error', reject);
      req.end();
    });
    await expect(plaintext).rejects.toThrow(/socket hang up|ECONNRESET|Parse Error/);
  });

  test('a client limited to TLS 1.1 is refused by the server, while the same client may use TLS 1.2', async () => {
    // SECLEVEL=0 lets THIS client offer TLS 1.1 at all (OpenSSL 3 refuses it by default), so the
    // refusal below can only come from the server.
    const weakClient: ConnectionOptions = { ca: ca.certificatePem, ciphers: 'DEFAULT@SECLEVEL=0', minVersion: 'TLSv1' };
    listener.tlsClientErrors.length = 0;
    await expect(handshake(listener.server.port, { ...weakClient, maxVersion: 'TLSv1.1' })).rejects.toMatchObject({
      code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
    });
    expect(listener.tlsClientErrors).toEqual(['ERR_SSL_UNSUPPORTED_PROTOCOL']);
    await expect(handshake(listener.server.port, { ...weakClient, maxVersion: 'TLSv1.2' })).resolves.toMatchObject({
      protocol: 'TLSv1.2',
      authorized: true,
    });
  });

  test('a TLS 1.2 client asking to renegotiate is refused', async () => {
    const socket = connect({
      host: '127.0.0.1',
      port: listener.server.port,
      servername: 'localhost',
      ca: ca.certificatePem,
      maxVersion: 'TLSv1.2',
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    const refused = new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve));
    socket.renegotiate({ rejectUnauthorized: true }, () => undefined);
    await expect(refused).resolves.toMatchObject({ code: 'ERR_SSL_NO_RENEGOTIATION' });
    socket.destroy();
  });

  test("the served certificate's notAfter is a metric, in seconds since the epoch", async () => {
    const notAfterSeconds = await metricValue(listener.registry, 'provsec_tls_certificate_not_after_seconds');
    expect(notAfterSeconds).toBe(Math.floor(listener.certificate.current().notAfter.getTime() / 1000));
    expect(notAfterSeconds * 1000).toBeGreaterThan(Date.now());
  });
});

describe('certificate rotation without a restart', () => {
  const ca = new TestCertificateAuthority();
  const files = new CertificateFiles(ca);
  let listener: Listener;
  let served: Issued;

  beforeEach(async () => {
    served = ca.issue();
    files.replaceByRename(served);
    listener = await startListener(files);
  });
  afterEach(async () => {
    await listener.server.close(1000);
    await listener.certificate.stop();
  });

  test('under load, a rename and an in-place rewrite each reach new connections, with zero failed requests and established connections kept', async () => {
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 4 });
    const heldOpen = new Agent({ keepAlive: true, maxSockets: 1 });
    const before = await httpsGet(listener.server.port, ca.certificatePem, heldOpen);
    expect(before.serialNumber).toBe(served.serialNumber);

    const outcomes: { ok: boolean; detail: string }[] = [];
    const serialsSeenOnFreshConnections = new Set<string>();
    let stopLoad = false;
    const load = Promise.all(
      Array.from({ length: 6 }, async (_, index) => {
        while (!stopLoad) {
          // Half the clients keep connections alive, half open a new one per request.
          const outcome = await httpsGet(listener.server.port, ca.certificatePem, index % 2 === 0 ? keepAlive : false)
            .then((response) => {
              if (index % 2 === 1) serialsSeenOnFreshConnections.add(response.serialNumber);
              return { ok: response.status === 200 && response.body === 'ok', detail: String(response.status) };
            })
            .catch((error: NodeJS.ErrnoException) => ({ ok: false, detail: error.code ?? error.message }));
          outcomes.push(outcome);
        }
      }),
    );

    await waitUntil('100 requests before the first rotation', () => outcomes.length >= 100);
    const renamed = ca.issue();
    files.replaceByRename(renamed);
    const renameVisibleMs = await waitUntil('the renamed pair on new connections', async () => {
      return (await handshake(listener.server.port, { ca: ca.certificatePem })).serialNumber === renamed.serialNumber;
    });

    await waitUntil('100 more requests', () => outcomes.length >= 250);
    const rewritten = ca.issue();
    files.rewriteInPlace(rewritten);
    const rewriteVisibleMs = await waitUntil('the rewritten pair on new connections', async () => {
      return (await handshake(listener.server.port, { ca: ca.certificatePem })).serialNumber === rewritten.serialNumber;
    });
    await waitUntil(
      'at least 500 requests in all',
      () => outcomes.length >= 500 && serialsSeenOnFreshConnections.has(rewritten.serialNumber),
    );
    stopLoad = true;
    await load;

    // The connection opened before both rotations is still open and still shows the first certificate.
    const after = await httpsGet(listener.server.port, ca.certificatePem, heldOpen);
    keepAlive.destroy();
    heldOpen.destroy();

    const failures = outcomes.filter((outcome) => !outcome.ok).map((outcome) => outcome.detail);
    console.info(
      `rotation under load: ${outcomes.length} requests, ${failures.length} failed; ` +
        `new pair on new connections after ${renameVisibleMs} ms (rename) and ${rewriteVisibleMs} ms (in-place rewrite); ` +
        `reloads ${await metricValue(listener.registry, 'provsec_tls_certificate_reloads_total')}`,
    );
    expect(failures).toEqual([]);
    expect(outcomes.length).toBeGreaterThanOrEqual(500);
    expect([...serialsSeenOnFreshConnections]).toEqual(
      expect.arrayContaining([served.serialNumber, renamed.serialNumber, rewritten.serialNumber]),
    );
    expect(after.status).toBe(200);
    expect(after.socket).toBeDefined();
    expect(after.socket).toBe(before.socket);
    expect(renameVisibleMs).toBeLessThan(5000);
    expect(rewriteVisibleMs).toBeLessThan(5000);
    expect(listener.certificate.status().serialNumber).toBe(rewritten.serialNumber);
  }, 60_000);

  test.each<[string, (ca: TestCertificateAuthority) => Issued, string]>([
    [
      'a key that does not match the certificate',
      (authority) => ({ ...authority.issue(), privateKeyPem: authority.issue().privateKeyPem }),
      'key-mismatch',
    ],
    [
      'an expired certificate',
      (authority) =>
        authority.issue({ notBefore: new Date(Date.now() - 48 * HOUR_MS), notAfter: new Date(Date.now() - HOUR_MS) }),
      'expired',
    ],
    [
      'a half-written certificate file',
      (authority) => {
        const issued = authority.issue();
        return { ...issued, certificatePem: issued.certificatePem.slice(0, 200) };
      },
      'incomplete-pem',
    ],
  ])(
    '%s is refused: the old pair keeps serving, and the refusal is logged (no key bytes), counted and shown',
    async (_label, make, reason) => {
      const bad = make(ca);
      files.replaceByRename(bad);
      await waitUntil('the refusal', () => listener.certificate.status().lastReloadFailure?.reason === reason);

      expect((await handshake(listener.server.port, { ca: ca.certificatePem })).serialNumber).toBe(served.serialNumber);
      expect(
        await metricValue(listener.registry, 'provsec_tls_certificate_reload_failures_total', { reason }),
      ).toBeGreaterThanOrEqual(1);
      expect(await metricValue(listener.registry, 'provsec_tls_certificate_reloads_total')).toBe(0);
      expect(listener.logs()).toContain(`"reason":"${reason}"`);
      expect(listener.logs()).toContain('the previous certificate keeps serving');
      const keyDer = Buffer.from(bad.privateKeyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const servedKeyDer = Buffer.from(served.privateKeyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      for (const needle of [...binaryNeedles(keyDer), ...binaryNeedles(servedKeyDer)])
        expect(listener.logs().includes(needle.text)).toBe(false);

      // A good pair afterwards is taken, and clears the shown failure.
      const good = ca.issue();
      files.replaceByRename(good);
      await waitUntil('the good pair', () => listener.certificate.status().serialNumber === good.serialNumber);
      expect(listener.certificate.status().lastReloadFailure).toBeUndefined();
    },
  );
});

describe('graceful close over TLS', () => {
  test('an in-flight HTTPS request finishes; new connections are refused', async () => {
    const ca = new TestCertificateAuthority();
    const files = new CertificateFiles(ca);
    files.replaceByRename(ca.issue());
    const listener = await startListener(files, (_req, res) => {
      setTimeout(() => res.end('finished'), 300);
    });
    const inFlight = httpsGet(listener.server.port, ca.certificatePem, false);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = listener.server.close(5000);
    await expect(handshake(listener.server.port, { ca: ca.certificatePem })).rejects.toThrow(/ECONNREFUSED/);
    await expect(inFlight).resolves.toMatchObject({ status: 200, body: 'finished' });
    await expect(closing).resolves.toBe(true);
    await listener.certificate.stop();
  });
});
