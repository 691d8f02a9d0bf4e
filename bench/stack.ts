/**
 * What the benchmark stands up, all in one temporary folder: an embedded Postgres of its own, a key
 * file as the Vault Agent renders it, a token issuer (key pair, JWKS file, policy file), and the
 * servers under test as separate processes whose readiness it waits for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type KeyLike } from 'jose';
import { Client } from 'pg';
import { startEmbeddedPostgres } from '../src/db/embedded';

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
  options: { algorithm: TokenAlgorithm; workerCount: number },
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
        ...workerSubjects.map((subject) => ({
          subject,
          issuer: BENCH_ISSUER,
          permissions: ['provision-secret:read'],
          groups: ['bench-*'],
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
  const baseUrl = `http://127.0.0.1:${options.port}`;
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
