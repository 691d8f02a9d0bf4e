/**
 * Migrations: the plain SQL files in sql/, applied in file-name order, each exactly once, each in
 * its own transaction, recorded in `provsec_migrations`. A session-level advisory lock serialises
 * replicas that start together: the second waits, then finds nothing left to do.
 *
 * A dedicated runner rather than a library: the maintained ones (node-pg-migrate 8+) ship as ES
 * modules only, which this CommonJS service and its jest suite cannot load, and the job is small.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pool, PoolClient } from 'pg';

// An arbitrary constant that names "provsec migrations" in pg_locks.
const MIGRATION_LOCK_ID = 4_242_001;
const MIGRATION_FILE_PATTERN = /^(\d{3})_[a-z0-9_]+\.sql$/;

export interface MigrationFile {
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

export async function readMigrationFiles(sqlDir: string): Promise<MigrationFile[]> {
  const names = (await readdir(sqlDir)).filter((name) => name.endsWith('.sql')).sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    if (!MIGRATION_FILE_PATTERN.test(name))
      throw new MigrationError(`migration file ${name} must be named NNN_words.sql`);
    const sql = await readFile(join(sqlDir, name), 'utf8');
    files.push({ name, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return files;
}

/** Applies what is pending; returns the names applied by this call. */
export async function runMigrations(pool: Pool, sqlDir: string): Promise<string[]> {
  const files = await readMigrationFiles(sqlDir);
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    try {
      await ensureMigrationsTable(client);
      const applied = await appliedMigrations(client);
      const newlyApplied: string[] = [];
      for (const file of files) {
        const appliedChecksum = applied.get(file.name);
        if (appliedChecksum !== undefined) {
          // An edited migration that already ran would leave databases that differ silently.
          if (appliedChecksum !== file.checksum)
            throw new MigrationError(`migration ${file.name} changed after it was applied`);
          continue;
        }
        await applyOne(client, file);
        newlyApplied.push(file.name);
      }
      return newlyApplied;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
    }
  } finally {
    client.release();
  }
}

/** The names among `files` that the database has not recorded (empty = up to date). */
export async function pendingMigrations(pool: Pick<Pool, 'query'>, files: readonly MigrationFile[]): Promise<string[]> {
  const exists = await pool.query<{ present: boolean }>(
    "SELECT to_regclass('provsec_migrations') IS NOT NULL AS present",
  );
  if (!exists.rows[0]?.present) return files.map((file) => file.name);
  const result = await pool.query<{ name: string }>('SELECT name FROM provsec_migrations');
  const applied = new Set(result.rows.map((row) => row.name));
  return files.filter((file) => !applied.has(file.name)).map((file) => file.name);
}

async function ensureMigrationsTable(client: PoolClient): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS provsec_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
}

async function appliedMigrations(client: PoolClient): Promise<Map<string, string>> {
  const result = await client.query<{ name: string; checksum: string }>(
    'SELECT name, checksum FROM provsec_migrations',
  );
  return new Map(result.rows.map((row) => [row.name, row.checksum]));
}

async function applyOne(client: PoolClient, file: MigrationFile): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(file.sql);
    await client.query('INSERT INTO provsec_migrations (name, checksum) VALUES ($1, $2)', [file.name, file.checksum]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw new MigrationError(`migration ${file.name} failed: ${(error as Error).message}`);
  }
}
