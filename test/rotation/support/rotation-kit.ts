/**
 * What the rotation tests share: rows sealed with the real envelope code and inserted straight into
 * a migrated test database, a key source over a fixed keyring, a check that opens every row, and
 * a pool wrapper that can hold or break a batch at its UPDATE (the Test_StorageErrorSafety habit).
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Pool, PoolClient, QueryResult } from 'pg';
import { APP_ROOT, SQL_DIR } from '../../../src/app-root';
import {
  importKekFromHex,
  KekUnavailableError,
  Keyring,
  openSecret,
  sealSecret,
  type KeyEncryptionKey,
} from '../../../src/crypto';
import { runMigrations } from '../../../src/db/migrate';
import { createTestDatabase, poolFor } from '../../support/test-database';

export const REWRAP_CLI = join(APP_ROOT, 'dist', 'scripts', 'rewrap.js');
export const CRYPTO_THREAD_SCRIPT_BUILT = join(APP_ROOT, 'dist', 'src', 'rotation', 'rewrap-thread.js');

export function newKek(kekVersion: number): { hex: string; kek: KeyEncryptionKey } {
  const hex = randomBytes(32).toString('hex');
  return { hex, kek: importKekFromHex(hex, kekVersion) };
}

export async function migratedDatabase(): Promise<{ url: string; pool: Pool }> {
  const url = await createTestDatabase('rot');
  const pool = poolFor(url);
  await runMigrations(pool, SQL_DIR);
  return { url, pool };
}

/** What a key source answers, over a fixed keyring (the e2e tests use the real file source). */
export function fixedKeys(keyring: Keyring) {
  return {
    currentKeyring: () => keyring,
    keyringFor: (kekId: string) =>
      keyring.has(kekId)
        ? Promise.resolve(keyring)
        : Promise.reject(new KekUnavailableError(`KEK ${kekId} is not in the keyring`, kekId)),
  };
}

export function secretFor(groupId: string, secretVersion = 1): string {
  return `ps-${groupId}-v${secretVersion}`;
}

/** `count` rows `${prefix}-00000`.. sealed under the keyring's current KEK, inserted in one statement. */
export async function seedRows(pool: Pool, keyring: Keyring, count: number, prefix = 'g'): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, index) => `${prefix}-${String(index).padStart(5, '0')}`);
  const envelopes = ids.map((id) =>
    Buffer.from(sealSecret(Buffer.from(secretFor(id)), { groupId: id, secretVersion: 1 }, keyring).envelope),
  );
  await pool.query(
    `INSERT INTO ota_groups (id, provision_secret_envelope, kek_id, kek_version, secret_version)
     SELECT id, envelope, $3, $4, 1 FROM unnest($1::text[], $2::bytea[]) AS u(id, envelope)`,
    [ids, envelopes, keyring.current.kekId, keyring.current.kekVersion],
  );
  return ids;
}

export interface StoredRow {
  id: string;
  secret_version: number;
  kek_id: string;
  kek_version: number | null;
  provision_secret_envelope: Buffer;
}

export async function allRows(pool: Pick<Pool, 'query'>): Promise<StoredRow[]> {
  return (
    await pool.query<StoredRow>(
      'SELECT id, secret_version, kek_id, kek_version, provision_secret_envelope FROM ota_groups ORDER BY id',
    )
  ).rows;
}

/** Opens every row with `keyring` and returns the secrets by id (throws on the first that fails). */
export async function openEveryRow(pool: Pick<Pool, 'query'>, keyring: Keyring): Promise<Map<string, string>> {
  const secrets = new Map<string, string>();
  for (const row of await allRows(pool)) {
    const plaintext = openSecret(
      row.provision_secret_envelope,
      { groupId: row.id, secretVersion: row.secret_version },
      keyring,
    );
    secrets.set(row.id, Buffer.from(plaintext).toString('utf8'));
  }
  return secrets;
}

export async function rowsPerKek(pool: Pick<Pool, 'query'>): Promise<Record<string, number>> {
  const result = await pool.query<{ kek_id: string; n: string }>(
    'SELECT kek_id, count(*) AS n FROM ota_groups GROUP BY kek_id',
  );
  return Object.fromEntries(result.rows.map((row) => [row.kek_id, Number(row.n)]));
}

/**
 * A pool whose clients pass every statement through `intercept` first: it sees the SQL and may
 * wait (hold the transaction open) or throw (an injected storage failure).
 */
export function interceptingPool(
  pool: Pool,
  intercept: (sql: string) => void | Promise<void>,
): Pick<Pool, 'connect' | 'query'> {
  const wrap = (client: PoolClient): PoolClient =>
    new Proxy(client, {
      get(target, property, receiver) {
        if (property !== 'query') return Reflect.get(target, property, receiver) as unknown;
        return async (sql: string, values?: unknown[]): Promise<QueryResult> => {
          await intercept(sql);
          return target.query(sql, values);
        };
      },
    });
  return {
    connect: (async () => wrap(await pool.connect())) as Pool['connect'],
    query: pool.query.bind<Pool['query']>(pool),
  };
}

export const isRewrapUpdate = (sql: string) => /^\s*UPDATE ota_groups AS g/.test(sql);

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the compiled `rewrap` command in a child process (built by `npm test` before jest).
 * `onStdout` sees the output as it comes and may return true to SIGKILL the child.
 */
export function runRewrapCli(
  env: Record<string, string>,
  args: string[] = [],
  onStdout?: (stdoutSoFar: string) => boolean,
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REWRAP_CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (!killed && onStdout?.(stdout)) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
