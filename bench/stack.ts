/**
 * What the benchmark stands up, all in one temporary folder: an embedded Postgres of its own, a key
 * file as the Vault Agent renders it, a token issuer (key pair, JWKS file, policy file), and the
 * servers under test as separate processes whose readiness it waits for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type KeyLike } from 'jose';
import { Client } from 'pg';
import { startEmbeddedPostgres } from '../src/db/embedded';
import { TestCertificateAuthority } from '../test/support/test-pki';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface BenchDatabase {
  readonly url: string;
  stop(): Promise<void>;
}

/** A fresh embedded Postgres in `dir` with one empty database for the run. */
export async function startBenchDatabase(dir: string): Promise<BenchDatabase> {
  const recentServerLog: string[] = [];
  const server = await startEmbeddedPostgres({
    dataDir: join(dir, 'postgres'),
    port: await freePort(),
    onLog: (message) => {
      recentServerLog.push(message);
      if (recentServerLog.length > 50) recentServerLog.shift();
    },
  }).catch((error: unknown) => {
    throw new Error(`embedded Postgres did not start: ${(error as Error).message}\n${recentServerLog.join('')}`);
  });
  const admin = new Client({ connectionString: server.adminUrl });
  await admin.connect();
  try {
    await admin.query('CREATE DATABASE provsec_bench');
  } finally {
    await admin.end();
  }
  return { url: server.urlFor('provsec_bench'), stop: () => server.stop() };
}

/** The single-key form, as the Vault Agent renders it; a fresh random KEK per run. */
export function writeKeyFile(dir: string): string {
  const keyFile = join(dir, 'provisioning-key');
  writeFileSync(keyFile, JSON.stringify({ key: randomBytes(32).toString('hex') }), { mode: 0o400 });
  return keyFile;
}

export type TokenAlgorithm = 'ES256' | 'RS256' | 'EdDSA';

export interface BenchIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly jwksFile: string;
  readonly policyFile: string;
  readonly managementSubject: string;
  readonly workerSubjects: readonly string[];
  /** With `recipientKeys`: each worker's private key (in workerSubjects order), to open its JWE answers. */
  readonly recipientPrivateKeys: readonly KeyObject[];
  /** A signed access token for `subject`, valid for `ttlSeconds` from now. */
  mint(subject: string, ttlSeconds: number): Promise<string>;
}

export const BENCH_ISSUER = 'https://issuer.provsec.bench';
export const BENCH_AUDIENCE = 'provsec';

/**
 * A trusted issuer with its JWKS file, and a policy shaped like a real one: a management identity,
 * an auditor, and one rule per certificate worker, each worker granted secret reads only.
 */
export async function createBenchIssuer(
  dir: string,
  options: { algorithm: TokenAlgorithm; workerCount: number; recipientKeys?: boolean },
): Promise<BenchIssuer> {
  const { publicKey, privateKey } = await generateKeyPair(
    options.algorithm,
    options.algorithm === 'EdDSA' ? { crv: 'Ed25519' } : {},
  );
  const keyId = `bench-${randomBytes(4).toString('hex')}`;
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(
    jwksFile,
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: keyId, alg: options.algorithm, use: 'sig' }] }),
  );

  const managementSubject = 'system:serviceaccount:platform:management-api';
  const workerSubjects = Array.from(
    { length: options.workerCount },
    (_, index) => `system:serviceaccount:provisioning:cert-worker-${index + 1}`,
  );
  // --read-delivery jwe: each worker registers a P-256 key, so its reads are answered with a JWE to it.
  const recipientKeyPairs = options.recipientKeys
    ? workerSubjects.map(() => generateKeyPairSync('ec', { namedCurve: 'P-256' }))
    : [];
  const policyFile = join(dir, 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({
      rules: [
        {
          subject: managementSubject,
          issuer: BENCH_ISSUER,
          permissions: ['device-groups:read', 'device-groups:write'],
        },
        { subject: 'system:serviceaccount:security:auditor', issuer: BENCH_ISSUER, permissions: ['audit:read'] },
        ...workerSubjects.map((subject, index) => ({
          subject,
          issuer: BENCH_ISSUER,
          permissions: ['provision-secret:read'],
          groups: ['bench-*'],
          ...(recipientKeyPairs[index]
            ? {
                recipientKey: {
                  ...recipientKeyPairs[index].publicKey.export({ format: 'jwk' }),
                  kid: `bench-worker-${index + 1}`,
                },
              }
            : {}),
        })),
      ],
    }),
  );

  return {
    issuer: BENCH_ISSUER,
    audience: BENCH_AUDIENCE,
    jwksFile,
    policyFile,
    managementSubject,
    workerSubjects,
    recipientPrivateKeys: recipientKeyPairs.map((pair) => pair.privateKey),
    mint: (subject, ttlSeconds) => signToken(privateKey, options.algorithm, keyId, subject, ttlSeconds),
  };
}

function signToken(
  privateKey: KeyLike,
  algorithm: TokenAlgorithm,
  keyId: string,
  subject: string,
  ttlSeconds: number,
): Promise<string> {
  const nowSeconds = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: algorithm, kid: keyId, typ: 'JWT' })
    .setIssuer(BENCH_ISSUER)
    .setAudience(BENCH_AUDIENCE)
    .setSubject(subject)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(nowSeconds + ttlSeconds)
    .sign(privateKey);
}

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly baseUrl: string;
  readonly logFile: string;
  /** SIGTERM, then wait for the exit (a --cpu-prof profile is written on the way out). */
  stop(): Promise<number | null>;
}

export interface ServerProcessOptions {
  readonly name: string;
  readonly script: string;
  readonly env: Readonly<Record<string, string>>;
  readonly nodeArgs?: readonly string[];
  readonly port: number;
  /** Default http; https for a server started with the bench's TLS files. */
  readonly scheme?: 'http' | 'https';
  /** Polled until it answers 200. */
  readonly readyPath: string;
  /** stdout and stderr go here, as a container runtime would collect them. */
  readonly logFile: string;
  readonly readyTimeoutMs?: number;
}

/** Starts `node script` with only the given environment (plus PATH), and waits until it is ready. */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const logFd = openSync(options.logFile, 'a');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.script], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const baseUrl = `${options.scheme ?? 'http'}://127.0.0.1:${options.port}`;
  try {
    await waitUntilReady(child, `${baseUrl}${options.readyPath}`, options.readyTimeoutMs ?? 60_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${options.name} did not become ready: ${(error as Error).message} (output in ${options.logFile})`);
  }
  return {
    name: options.name,
    pid: child.pid as number,
    baseUrl,
    logFile: options.logFile,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

async function waitUntilReady(child: ChildProcess, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no answer yet';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) return;
      lastProblem = `${url} answered ${response.status}: ${(await response.text()).slice(0, 300)}`;
    } catch (error) {
      lastProblem = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms (${lastProblem})`);
}

/** The service's certificate and key for `--tls`, and the CA that signed them. */
export interface BenchTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

const TLS_DIR_VARIABLE = 'PROVSEC_BENCH_TLS_DIR';

/**
 * `--tls` needs every client of the run (this process's fetch calls and the load drivers) to trust
 * a CA made for the run, and Node reads NODE_EXTRA_CA_CERTS only at start-up. So the first process
 * makes the CA and the server certificate (for 127.0.0.1), runs the bench again as a child with
 * NODE_EXTRA_CA_CERTS set, and returns its exit code; the child finds the files with benchTlsFiles().
 * Returns undefined in the child (already trusting the CA): go on with the run.
 */
export function rerunTrustingBenchCa(): number | undefined {
  if (process.env[TLS_DIR_VARIABLE] !== undefined) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'provsec-bench-tls-'));
  try {
    const ca = new TestCertificateAuthority('provsec bench CA');
    const issued = ca.issue({ commonName: 'provsec bench service' });
    writeFileSync(join(dir, 'ca.pem'), ca.certificatePem);
    writeFileSync(join(dir, 'cert.pem'), issued.certificatePem);
    writeFileSync(join(dir, 'key.pem'), issued.privateKeyPem, { mode: 0o600 });
    const child = spawnSync(process.execPath, process.argv.slice(1), {
      stdio: 'inherit',
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'), [TLS_DIR_VARIABLE]: dir },
    });
    return child.status ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** In the re-run child: where its TLS files are. */
export function benchTlsFiles(): BenchTlsFiles {
  const dir = process.env[TLS_DIR_VARIABLE];
  if (dir === undefined) throw new Error('benchTlsFiles() outside the re-run of rerunTrustingBenchCa()');
  return { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), caFile: join(dir, 'ca.pem') };
}
