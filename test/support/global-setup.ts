// Starts ONE real Postgres for the whole jest run; each test file creates its own database on it
// (test/support/test-database.ts), so files run in parallel without sharing state.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../../src/db/embedded';
import { freePort } from './free-port';

export const STATE_FILE = join(tmpdir(), 'provsec-jest-postgres.json');

export default async function globalSetup(): Promise<void> {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'provsec-jest-')), 'pg');
  const port = await freePort();
  const server = await startEmbeddedPostgres({ dataDir, port });
  process.env.PROVSEC_TEST_ADMIN_URL = server.adminUrl;
  (globalThis as Record<string, unknown>).__PROVSEC_PG__ = server;
  writeFileSync(STATE_FILE, JSON.stringify({ adminUrl: server.adminUrl, dataDir }));
}
