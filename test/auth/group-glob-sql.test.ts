/**
 * The audit log filters group-scoped callers in SQL with groupGlobToSqlLike: Postgres LIKE must
 * agree with compileGroupGlob on every glob and id, or a scoped auditor would see another group's
 * events (or miss its own). Checked against a real Postgres.
 */
import fc from 'fast-check';
import type { Pool } from 'pg';
import { compileGroupGlob, groupGlobToSqlLike } from '../../src/auth/group-glob';
import { createTestDatabase, poolFor } from '../support/test-database';

let pool: Pool;
beforeAll(async () => {
  pool = poolFor(await createTestDatabase('glob'));
});
afterAll(() => pool.end());

async function sqlMatches(pairs: ReadonlyArray<readonly [string, string]>): Promise<boolean[]> {
  const result = await pool.query<{ matches: boolean }>(
    `SELECT id LIKE pattern AS matches FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(id, pattern, n) ORDER BY n`,
    [pairs.map(([, groupId]) => groupId), pairs.map(([glob]) => groupGlobToSqlLike(glob))],
  );
  return result.rows.map((row) => row.matches);
}

test.each([
  ['fleet-a*', 'fleet-a.1', true],
  ['fleet-a*', 'fleet-b.1', false],
  // '_' is a LIKE wildcard; in a glob it is a literal.
  ['fleet_a*', 'fleetXa1', false],
  ['fleet_a*', 'fleet_a1', true],
  ['site-?', 'site-a', true],
  ['site-?', 'site-ab', false],
  ['*', 'Any.Group', true],
  // LIKE is case-sensitive, as the glob is.
  ['fleet-*', 'FLEET-a', false],
])('LIKE %s on %s is %s, as the glob', async (glob, groupId, expected) => {
  expect(compileGroupGlob(glob)(groupId)).toBe(expected);
  expect(await sqlMatches([[glob, groupId]])).toEqual([expected]);
});

test('LIKE and the glob matcher agree on random globs and group ids', async () => {
  const alphabet = ['a', 'b', '_', '.', '-', ':', 'Z', '0'];
  const id = fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 8 }).map((chars) => chars.join(''));
  const glob = fc
    .array(fc.constantFrom(...alphabet, '*', '?'), { minLength: 1, maxLength: 8 })
    .map((chars) => chars.join(''));
  const pairs = fc.sample(fc.tuple(glob, id), { numRuns: 3000, seed: 14 });
  // Ids built from the glob itself so that matches are common, not only misses.
  const derived = pairs.map(([pattern]): [string, string] => [
    pattern,
    pattern.replace(/\*/g, 'ab').replace(/\?/g, '_'),
  ]);
  const all = [...pairs, ...derived];
  const expected = all.map(([pattern, groupId]) => compileGroupGlob(pattern)(groupId));
  expect(expected.filter(Boolean).length).toBeGreaterThan(1000);
  expect(await sqlMatches(all)).toEqual(expected);
});
