import { randomBytes } from 'node:crypto';
import { Client, Pool } from 'pg';

export function adminUrl(): string {
  const url = process.env.PROVSEC_TEST_ADMIN_URL;
  if (!url) throw new Error('PROVSEC_TEST_ADMIN_URL is not set: run the tests through jest (global setup)');
  return url;
}

/** Creates a fresh, empty database on the shared test server and returns its URL. */
export async function createTestDatabase(prefix = 'test'): Promise<string> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = new Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

export function poolFor(url: string): Pool {
  return new Pool({ connectionString: url, max: 5 });
}
