/**
 * The compiled service (dist/src/main.js, built by `npm test` before jest) as a child process, with
 * real configuration files: a key file, a JWKS file and the test policy, and ES256 tokens from the
 * key the JWKS publishes. Its stdout and stderr are kept for the tests (and the leak sweep).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { APP_ROOT } from '../../../src/app-root';
import { randomKekHex, TEST_AUDIENCE, TEST_ISSUER, TEST_POLICY } from '../../support/test-service';
import { waitUntil } from './api-client';

export const MAIN_SCRIPT = join(APP_ROOT, 'dist', 'src', 'main.js');

export interface ServiceProcess {
  readonly url: string;
  readonly kekHex: string;
  readonly child: ChildProcess;
  /** Everything it wrote so far, stdout then stderr. */
  output(): string;
  token(subject: string): Promise<string>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
}

export async function startServiceProcess(options: {
  databaseUrl: string;
  env?: Record<string, string>;
}): Promise<ServiceProcess> {
  const stateDir = mkdtempSync(join(tmpdir(), 'provsec-proc-'));
  const kekHex = randomKekHex();
  const keyFile = join(stateDir, 'provisioning-key');
  writeFileSync(keyFile, JSON.stringify({ key: kekHex }), { mode: 0o440 });
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const keyId = `proc-${randomBytes(4).toString('hex')}`;
  const jwksFile = join(stateDir, 'jwks.json');
  writeFileSync(
    jwksFile,
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: keyId, alg: 'ES256', use: 'sig' }] }),
  );
  const policyFile = join(stateDir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(TEST_POLICY));

  const child = spawn(process.execPath, [MAIN_SCRIPT], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: options.databaseUrl,
      PROVSEC_STATE_DIR: stateDir,
      KEY_SOURCE: 'file',
      KEY_FILE: keyFile,
      AUTH_ISSUER: TEST_ISSUER,
      AUTH_JWKS_FILE: jwksFile,
      AUTH_POLICY_FILE: policyFile,
      LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  await waitUntil(
    'the service process listens',
    () => {
      if (exitedEarly) throw new Error(`the service process exited during start-up:\n${stdout}\n${stderr}`);
      return /"msg":"provsec listening"/.test(stdout);
    },
    30_000,
  );
  const port = Number(/"port":(\d+)[^\n]*"msg":"provsec listening"/.exec(stdout)?.[1]);
  return {
    url: `http://127.0.0.1:${port}`,
    kekHex,
    child,
    output: () => `${stdout}\n${stderr}`,
    exited,
    token: (subject: string) => signToken(privateKey, keyId, subject),
  };
}

function signToken(privateKey: KeyLike, keyId: string, subject: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: keyId, typ: 'JWT' })
    .setIssuer(TEST_ISSUER)
    .setAudience(TEST_AUDIENCE)
    .setSubject(subject)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(privateKey);
}
