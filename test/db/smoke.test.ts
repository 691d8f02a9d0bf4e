import { Client } from 'pg';
import { createTestDatabase } from '../support/test-database';

test('each test file gets a real, empty database of its own', async () => {
  const url = await createTestDatabase();
  const client = new Client({ connectionString: url });
  await client.connect();
  const result = await client.query<{ v: string }>('SELECT version() AS v');
  await client.end();
  expect(result.rows[0]?.v).toMatch(/PostgreSQL 17/);
});
