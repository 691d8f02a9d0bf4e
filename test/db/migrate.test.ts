import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { SQL_DIR, APP_ROOT } from '../../src/app-root';
import { pendingMigrations, readMigrationFiles, runMigrations } from '../../src/db/migrate';
import { createTestDatabase, poolFor } from '../support/test-database';

const execFileAsync = promisify(execFile);

async function columnsOf(pool: Pool, table: string): Promise<Record<string, string>> {
  const result = await pool.query<{ column_name: string; data_type: string }>(
    'SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
    [table],
  );
  return Object.fromEntries(result.rows.map((row) => [row.column_name, row.data_type]));
}

const pools: Pool[] = [];
afterAll(async () => Promise.all(pools.map((pool) => pool.end())));
async function freshPool(): Promise<Pool> {
  const pool = poolFor(await createTestDatabase('migrate'));
  pools.push(pool);
  return pool;
}

describe('migrations', () => {
  test('on an empty database every file applies once, in order, and is recorded', async () => {
    const pool = await freshPool();
    const files = await readMigrationFiles(SQL_DIR);
    expect(await pendingMigrations(pool, files)).toEqual(files.map((file) => file.name));
    expect(await runMigrations(pool, SQL_DIR)).toEqual(files.map((file) => file.name));
    const recorded = await pool.query<{ name: string }>('SELECT name FROM provsec_migrations ORDER BY name');
    expect(recorded.rows.map((row) => row.name)).toEqual(files.map((file) => file.name));
    expect(await columnsOf(pool, 'ota_groups')).toMatchObject({
      id: 'text',
      name: 'text',
      provision_secret_envelope: 'bytea',
      kek_id: 'text',
      secret_version: 'integer',
    });
    expect(await pendingMigrations(pool, files)).toEqual([]);
  });

  test('twice in a row: the second run applies nothing and changes nothing', async () => {
    const pool = await freshPool();
    await runMigrations(pool, SQL_DIR);
    const before = await columnsOf(pool, 'ota_groups');
    expect(await runMigrations(pool, SQL_DIR)).toEqual([]);
    expect(await columnsOf(pool, 'ota_groups')).toEqual(before);
  });

  test('a pre-existing ota_groups keeps its own columns and rows; only what provsec needs is added', async () => {
    const pool = await freshPool();
    await pool.query(`CREATE TABLE ota_groups (
      id text PRIMARY KEY,
      name text NOT NULL,
      iota_group_ref uuid,
      created_at timestamptz NOT NULL DEFAULT '2023-10-06T00:00:00Z'
    )`);
    await pool.query(`INSERT INTO ota_groups (id, name, iota_group_ref) VALUES
      ('legacy-1', 'Legacy one', '6f1c7c4e-8f9b-4b8e-9a51-0d6c5a0f8b11'),
      ('legacy-2', 'Legacy two', NULL)`);
    const before = await pool.query('SELECT id, name, iota_group_ref, created_at FROM ota_groups ORDER BY id');

    await runMigrations(pool, SQL_DIR);

    const columns = await columnsOf(pool, 'ota_groups');
    expect(columns).toMatchObject({
      id: 'text',
      name: 'text',
      iota_group_ref: 'uuid',
      created_at: 'timestamp with time zone',
    });
    expect(columns).toHaveProperty('provision_secret_envelope', 'bytea');
    const after = await pool.query('SELECT id, name, iota_group_ref, created_at FROM ota_groups ORDER BY id');
    expect(after.rows).toEqual(before.rows);
    const secrets = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM ota_groups WHERE provision_secret_envelope IS NOT NULL',
    );
    expect(secrets.rows[0]?.n).toBe(0);
    // NOT NULL on the existing name column is kept, not rewritten.
    const nullable = await pool.query<{ is_nullable: string }>(
      "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'ota_groups' AND column_name = 'name'",
    );
    expect(nullable.rows[0]?.is_nullable).toBe('NO');
  });

  test('two processes migrating one database at once: the advisory lock lets each file apply exactly once', async () => {
    const pool = await freshPool();
    const url = (pool as unknown as { options: { connectionString: string } }).options.connectionString;
    const script = join(APP_ROOT, 'dist', 'scripts', 'migrate.js');
    const env = { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'info' };
    const [first, second] = await Promise.all([
      execFileAsync('node', [script], { env }),
      execFileAsync('node', [script], { env }),
    ]);
    const logs = `${first.stdout}\n${second.stdout}`;
    const files = await readMigrationFiles(SQL_DIR);
    // Exactly one process applied the files; the other found them done.
    expect(logs).toContain('migrations applied');
    expect(logs).toContain('migrations up to date');
    const recorded = await pool.query<{ name: string; n: number }>(
      'SELECT name, count(*)::int AS n FROM provsec_migrations GROUP BY name',
    );
    expect(recorded.rows).toHaveLength(files.length);
  });

  test('a migration edited after it ran is refused', async () => {
    const pool = await freshPool();
    await runMigrations(pool, SQL_DIR);
    await pool.query("UPDATE provsec_migrations SET checksum = 'tampered' WHERE name = '001_ota_groups.sql'");
    await expect(runMigrations(pool, SQL_DIR)).rejects.toThrow(/001_ota_groups.sql changed after it was applied/);
  });
});

// provsec's two append-only tables: triggers refuse changes for every role (the owner too), and the
// runtime role is granted no more than INSERT and SELECT.
describe.each([
  {
    table: 'audit_events',
    insert: "INSERT INTO audit_events (request_id, action, outcome) VALUES ('r1', 'test', 'ok')",
    update: "UPDATE audit_events SET outcome = 'error'",
  },
  {
    table: 'provision_secret_history',
    insert:
      "INSERT INTO provision_secret_history (group_id, secret_version, data_layer_sha256) VALUES ('g', 1, sha256('x'))",
    update: 'UPDATE provision_secret_history SET secret_version = 2',
  },
])('$table', ({ table, insert, update }) => {
  test('is append-only, even for the table owner', async () => {
    const pool = await freshPool();
    await runMigrations(pool, SQL_DIR);
    await pool.query(insert);
    await expect(pool.query(update)).rejects.toThrow(/append-only/);
    await expect(pool.query(`DELETE FROM ${table}`)).rejects.toThrow(/append-only/);
    await expect(pool.query(`TRUNCATE ${table}`)).rejects.toThrow(/append-only/);
  });

  test('the service role may insert and read it but not update or delete it', async () => {
    const pool = await freshPool();
    await runMigrations(pool, SQL_DIR);
    const privileges = await pool.query<{ privilege_type: string }>(
      "SELECT privilege_type FROM information_schema.role_table_grants WHERE grantee = 'provsec_app' AND table_name = $1 ORDER BY 1",
      [table],
    );
    expect(privileges.rows.map((row) => row.privilege_type)).toEqual(['INSERT', 'SELECT']);
  });
});

describe('the secret history (006): what the rollback check reads', () => {
  test('groups stored before the migration get their current envelope as the first record; rows without a secret get none', async () => {
    const pool = await freshPool();
    const before = mkdtempSync(join(tmpdir(), 'provsec-sql-'));
    for (const file of (await readMigrationFiles(SQL_DIR)).filter((file) => file.name < '006'))
      writeFileSync(join(before, file.name), file.sql);
    await runMigrations(pool, before);
    const envelope = Buffer.concat([Buffer.alloc(77, 1), Buffer.from('data layer of a stored envelope')]);
    await pool.query(
      `INSERT INTO ota_groups (id, provision_secret_envelope, kek_id, kek_version, secret_version)
       VALUES ('old.1', $1, 'kek_00000000000000000000000000000001', 1, 3)`,
      [envelope],
    );
    await pool.query("INSERT INTO ota_groups (id, name) VALUES ('legacy.no-secret', 'x')");

    await runMigrations(pool, SQL_DIR);
    const history = await pool.query<{ group_id: string; secret_version: number; fingerprint: string }>(
      "SELECT group_id, secret_version, encode(data_layer_sha256, 'hex') AS fingerprint FROM provision_secret_history",
    );
    // The fingerprint is SHA-256 of bytes 77.. (docs/envelope-format.md), computed here independently.
    expect(history.rows).toEqual([
      {
        group_id: 'old.1',
        secret_version: 3,
        fingerprint: createHash('sha256').update(envelope.subarray(77)).digest('hex'),
      },
    ]);
  });
});

describe('the unique index on ota_groups(id)', () => {
  async function uniqueIndexesOnId(pool: Pool): Promise<string[]> {
    const result = await pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = 'ota_groups'::regclass AND i.indisunique AND i.indnatts = 1 AND a.attname = 'id' ORDER BY 1`,
    );
    return result.rows.map((row) => row.name);
  }

  test('a table whose primary key is id keeps only the primary key', async () => {
    const pool = await freshPool();
    await runMigrations(pool, SQL_DIR);
    expect(await uniqueIndexesOnId(pool)).toEqual(['ota_groups_pkey']);
  });

  test('a pre-existing table whose id is not its primary key keeps the unique index provsec needs', async () => {
    const pool = await freshPool();
    await pool.query('CREATE TABLE ota_groups (pk bigserial PRIMARY KEY, id text NOT NULL, name text)');
    await runMigrations(pool, SQL_DIR);
    expect(await uniqueIndexesOnId(pool)).toEqual(['ota_groups_id_key']);
  });
});
