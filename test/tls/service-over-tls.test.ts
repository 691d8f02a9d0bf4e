/**
 * The whole service in-process with TLS_CERT_FILE / TLS_KEY_FILE: it serves /v1 and the probes over
 * HTTPS, and a refused certificate reload shows in /readyz and /metrics while readiness holds.
 */
import { Agent, request } from 'node:https';
import { CertificateFiles, TestCertificateAuthority } from '../support/test-pki';
import { startTestService, type TestService } from '../support/test-service';

const HOUR_MS = 3_600_000;

describe('the service with a serving certificate', () => {
  const ca = new TestCertificateAuthority();
  const files = new CertificateFiles(ca);
  const agent = new Agent({ keepAlive: true, ca: ca.certificatePem, servername: 'localhost' });
  let svc: TestService;

  const get = (path: string, token?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        `${svc.url}${path}`,
        { agent, headers: token ? { authorization: `Bearer ${token}` } : {} },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });

  beforeAll(async () => {
    files.replaceByRename(ca.issue());
    svc = await startTestService({ env: { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile } });
  }, 30_000);
  afterAll(async () => {
    agent.destroy();
    await svc?.stop();
  });

  test('it listens on https and says so in its start-up line', async () => {
    expect(svc.url).toMatch(/^https:\/\//);
    expect(svc.logs()).toMatch(/"tls":true[^\n]*"msg":"provsec listening"/);
    await expect(get('/healthz')).resolves.toMatchObject({ status: 200 });
    const worker = await svc.token('system:serviceaccount:provisioning:cert-worker');
    await expect(get('/v1/device-groups/none-such/provision-secret', worker)).resolves.toMatchObject({ status: 404 });
  });

  test('a refused reload keeps the service ready and is shown in /readyz and /metrics', async () => {
    const expired = ca.issue({
      notBefore: new Date(Date.now() - 48 * HOUR_MS),
      notAfter: new Date(Date.now() - HOUR_MS),
    });
    files.rewriteInPlace(expired);
    const deadline = Date.now() + 10_000;
    let readiness = await get('/readyz');
    while (!readiness.body.includes('was refused: expired') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      readiness = await get('/readyz');
    }
    expect(readiness.status).toBe(200);
    expect(JSON.parse(readiness.body)).toMatchObject({
      status: 'ready',
      checks: { tlsCertificate: { ok: true, detail: expect.stringContaining('was refused: expired') as string } },
    });
    const metrics = (await get('/metrics')).body;
    expect(metrics).toMatch(/^provsec_tls_certificate_reload_failures_total\{reason="expired"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^provsec_tls_certificate_not_after_seconds \d{10}$/m);
  });
});
