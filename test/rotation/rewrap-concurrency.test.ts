/**
 * Several rewrap runs over the same rows at once (replicas' workers, a command beside them): the
 * SKIP LOCKED claims share the work, no row is rewrapped twice, nothing deadlocks, and a run that
 * finds rows held by someone else waits for them rather than reporting a false "done".
 */
import type { Pool } from 'pg';
import { Keyring } from '../../src/crypto';
import { rewrapAll, type RewrapBatchReport, type RewrapRunResult } from '../../src/rotation/rewrap';
import {
  fixedKeys,
  migratedDatabase,
  newKek,
  openEveryRow,
  rowsPerKek,
  secretFor,
  seedRows,
  sleep,
} from './support/rotation-kit';

const kek1 = newKek(1).kek;
const kek2 = newKek(2).kek;
const underKek1 = Keyring.single(kek1);
const rotated = Keyring.create([kek1, kek2], kek2.kekId);
const onlyKek2 = Keyring.single(kek2);

/** Fails the test instead of hanging it if the runs ever deadlock. */
function withinMs<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe('concurrent rewrap runs', () => {
  let pool: Pool;
  beforeEach(async () => {
    ({ pool } = await migratedDatabase());
  });
  afterEach(() => pool.end());

  test('two runs at once over the same rows rewrap each row exactly once, with no deadlock, and every row opens under the new KEK alone', async () => {
    const ids = await seedRows(pool, underKek1, 1200);
    const run = () => rewrapAll({ pool, keys: fixedKeys(rotated) }, { batchSize: 40, concurrency: 2 });
    const results: RewrapRunResult[] = await withinMs(
      Promise.all([run(), run()]),
      20_000,
      'two concurrent rewrap runs',
    );

    expect(results[0]!.rewrapped + results[1]!.rewrapped).toBe(ids.length);
    // Both did part of the work: they really ran over the same rows at the same time.
    expect(Math.min(results[0]!.rewrapped, results[1]!.rewrapped)).toBeGreaterThan(0);
    for (const result of results) expect(result).toMatchObject({ failed: 0, remaining: 0 });
    expect(await rowsPerKek(pool)).toEqual({ [kek2.kekId]: ids.length });
    const secrets = await openEveryRow(pool, onlyKek2);
    expect(secrets.size).toBe(ids.length);
    for (const id of ids) expect(secrets.get(id)).toBe(secretFor(id));
  });

  test('one batch claims in id order and skips a row another worker holds instead of waiting', async () => {
    const ids = await seedRows(pool, underKek1, 10);
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM ota_groups WHERE id = $1 FOR UPDATE', [ids[1]]);
      // The public path, stopped after its first batch (a skipping pass, as every run begins).
      const reports: RewrapBatchReport[] = [];
      await withinMs(
        rewrapAll(
          { pool, keys: fixedKeys(rotated) },
          { batchSize: 4, onBatch: (batch) => reports.push(batch), shouldStop: () => reports.length > 0 },
        ),
        5000,
        'one batch',
      );
      const report = reports[0];
      expect(report).toMatchObject({ claimed: 4, rewrapped: 4, lastId: ids[4], failures: [] });
      await holder.query('COMMIT');
      expect(await rowsPerKek(pool)).toEqual({ [kek1.kekId]: 6, [kek2.kekId]: 4 });
    } finally {
      holder.release();
    }
  });

  test('a row another transaction holds is skipped at first, then waited for, so the run ends with nothing left', async () => {
    const ids = await seedRows(pool, underKek1, 50);
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM ota_groups WHERE id = $1 FOR UPDATE', [ids[10]]);
      const running = rewrapAll({ pool, keys: fixedKeys(rotated) }, { batchSize: 8 });
      await sleep(400);
      expect((await rowsPerKek(pool))[kek1.kekId]).toBe(1); // everything but the held row is done
      await holder.query('COMMIT');
      const result = await withinMs(running, 10_000, 'the rewrap run');
      expect(result).toMatchObject({ rewrapped: ids.length, remaining: 0 });
    } finally {
      holder.release();
    }
  });

  test('a row held longer than the lock timeout ends the run with an error; the batches before it are committed', async () => {
    const ids = await seedRows(pool, underKek1, 30);
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM ota_groups WHERE id = $1 FOR UPDATE', [ids[0]]);
      await expect(
        rewrapAll({ pool, keys: fixedKeys(rotated) }, { batchSize: 8, lockTimeoutMs: 200 }),
      ).rejects.toMatchObject({ code: '55P03' });
      expect(await rowsPerKek(pool)).toEqual({ [kek1.kekId]: 1, [kek2.kekId]: ids.length - 1 });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
  });
});
