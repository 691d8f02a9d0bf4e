/**
 * The compiled service as a child process (what Kubernetes runs) with TLS: SIGTERM still drains
 * over TLS; production without a certificate does not start; TLS_DISABLE=true starts with one warning.
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:https';
import { Pool } from 'pg';
import { startServiceProcess, MAIN_SCRIPT } from '../resilience/support/service-process';
import { createTestDatabase } from '../support/test-database';
import { CertificateFiles, TestCertificateAuthority } from '../support/test-pki';

function httpsGet(url: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the provsec process with TLS', () => {
  let databaseUrl: string;
  let admin: Pool;
  beforeAll(async () => {
    databaseUrl = await createTestDatabase('process-tls');
    admin = new Pool({ connectionString: databaseUrl, max: 2 });
  });
  afterAll(() => admin.end());

  test('SIGTERM over TLS: the request in flight finishes, the process drains and exits 0', async () => {
    const ca = new TestCertificateAuthority();
    const files = new CertificateFiles(ca);
    files.replaceByRename(ca.issue());
    const proc = await startServiceProcess({
      databaseUrl,
      env: { TLS_CERT_FILE: files.certFile, TLS_KEY_FILE: files.keyFile, SHUTDOWN_TIMEOUT_MS: '10000' },
    });
    const url = proc.url.replace('http://', 'https://');
    const agent = new Agent({ keepAlive: true, ca: ca.certificatePem, servername: 'localhost' });
    try {
      await expect(httpsGet(`${url}/healthz`, agent)).resolves.toMatchObject({ status: 200 });
      // Provably in flight when the signal lands: /readyz counts rows in ota_groups, which a lock holds.
      const lock = await admin.connect();
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE ota_groups IN ACCESS EXCLUSIVE MODE');
      const inFlight = httpsGet(`${url}/readyz`, agent);
      await waitUntil(async () => {
        const { rows } = await admin.query<{ waiting: number }>(
          "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'provsec' AND wait_event_type = 'Lock'",
        );
        return (rows[0]?.waiting ?? 0) >= 1;
      });
      proc.child.kill('SIGTERM');
      await waitUntil(() => proc.output().includes('"msg":"shutting down"'));
      await lock.query('COMMIT');
      lock.release();
      // Answered (ready or not) over the same TLS connection, not cut.
      await expect(inFlight).resolves.toMatchObject({ status: expect.any(Number) as number });
      await expect(proc.exited).resolves.toBe(0);
      expect(proc.output()).toMatch(/"drained":true/);
      expect(proc.output()).toMatch(/"tls":true[^\n]*"msg":"provsec listening"/);
    } finally {
      agent.destroy();
      if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
    }
  }, 60_000);

  test('production without a certificate stops with one configuration line naming the variables', async () => {
    const child = spawn(process.execPath, [MAIN_SCRIPT], {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', DATABASE_URL: databaseUrl },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toBe(
      'provsec: configuration error: TLS_CERT_FILE: and TLS_KEY_FILE are required when NODE_ENV=production (or TLS_DISABLE=true behind a mutual-TLS mesh)\n',
    );
  });

  test('production with TLS_DISABLE=true starts in plaintext and warns exactly once', async () => {
    const proc = await startServiceProcess({ databaseUrl, env: { NODE_ENV: 'production', TLS_DISABLE: 'true' } });
    try {
      const warnings = proc
        .output()
        .split('\n')
        .filter((line) => line.includes('PLAINTEXT'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn' });
      expect(proc.output()).toMatch(/"tls":false[^\n]*"msg":"provsec listening"/);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  }, 60_000);
});
