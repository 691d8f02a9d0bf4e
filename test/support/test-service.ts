/**
 * The whole service, in-process, on its own test database, with real parts: a key file (the file
 * key source, as the Vault Agent would render it), a JWKS file and policy for real signed tokens,
 * and a captured logger so tests can search every log line.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type KeyLike } from 'jose';
import type { Pool } from 'pg';
import { loadConfig } from '../../src/config';
import { startService, type RunningService } from '../../src/runtime';
import { capturedLogger } from './log-capture';
import { createTestDatabase, poolFor } from './test-database';

export const TEST_ISSUER = 'https://issuer.provsec.test';
export const TEST_AUDIENCE = 'provsec';

/** The policy the API tests run under: one identity per role, one group-restricted worker. */
export const TEST_POLICY = {
  rules: [
    { subject: 'management-api', permissions: ['device-groups:read', 'device-groups:write'] },
    { subject: 'auditor', permissions: ['audit:read'] },
    { subject: 'key-admin', permissions: ['keys:admin'] },
    {
      subject: 'system:serviceaccount:provisioning:cert-worker',
      permissions: ['provision-secret:read', 'device-groups:read'],
    },
    { subject: 'fleet-a-worker', permissions: ['provision-secret:read'], groups: ['fleet-a.*'] },
    { subject: 'worker-pool-*', permissions: ['provision-secret:read'] },
  ],
};

export interface TokenOptions {
  ttlSeconds?: number;
  audience?: string;
  issuer?: string;
  claims?: Record<string, unknown>;
}

export interface TestService {
  readonly url: string;
  readonly service: RunningService;
  readonly pool: Pool;
  readonly databaseUrl: string;
  readonly keyFile: string;
  readonly stateDir: string;
  /** Every log line the service wrote, as text. */
  logs(): string;
  /** A valid token for `subject` (ES256, from the trusted JWKS). */
  token(subject: string, options?: TokenOptions): Promise<string>;
  readonly signingKey: KeyLike;
  readonly keyId: string;
  /** Replaces the key file atomically (temp file + rename), as the Vault Agent does. */
  writeKeyFile(content: unknown): void;
  stop(): Promise<void>;
}

export function randomKekHex(): string {
  return randomBytes(32).toString('hex');
}

export async function startTestService(
  options: { env?: Record<string, string>; keyFileContent?: unknown; policy?: unknown } = {},
): Promise<TestService> {
  const stateDir = mkdtempSync(join(tmpdir(), 'provsec-svc-'));
  const keyFile = join(stateDir, 'provisioning-key');
  const writeKeyFile = (content: unknown): void => {
    const temporary = `${keyFile}.tmp-${randomBytes(4).toString('hex')}`;
    writeFileSync(temporary, typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o440 });
    renameSync(temporary, keyFile);
  };
  writeKeyFile(options.keyFileContent ?? { key: randomKekHex() });

  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const keyId = `test-${randomBytes(4).toString('hex')}`;
  const jwksFile = join(stateDir, 'jwks.json');
  writeFileSync(
    jwksFile,
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: keyId, alg: 'ES256', use: 'sig' }] }),
  );
  const policyFile = join(stateDir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(options.policy ?? TEST_POLICY));

  const databaseUrl = await createTestDatabase('svc');
  const config = loadConfig({
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_MAX: '10',
    PROVSEC_STATE_DIR: stateDir,
    KEY_SOURCE: 'file',
    KEY_FILE: keyFile,
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_JWKS_FILE: jwksFile,
    AUTH_POLICY_FILE: policyFile,
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...options.env,
  });
  const log = capturedLogger('debug');
  const service = await startService(config, log.logger);
  const pool = poolFor(databaseUrl);

  return {
    url: `${config.tls ? 'https' : 'http'}://127.0.0.1:${service.port}`,
    service,
    pool,
    databaseUrl,
    keyFile,
    stateDir,
    logs: log.text,
    signingKey: privateKey,
    keyId,
    writeKeyFile,
    async token(subject, tokenOptions = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ ...tokenOptions.claims })
        .setProtectedHeader({ alg: 'ES256', kid: keyId, typ: 'JWT' })
        .setIssuer(tokenOptions.issuer ?? TEST_ISSUER)
        .setAudience(tokenOptions.audience ?? TEST_AUDIENCE)
        .setSubject(subject)
        .setIssuedAt(now)
        .setExpirationTime(now + (tokenOptions.ttlSeconds ?? 600))
        .sign(privateKey);
    },
    async stop() {
      await service.stop();
      await pool.end();
    },
  };
}
