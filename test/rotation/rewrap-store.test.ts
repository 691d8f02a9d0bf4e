/**
 * The rewrap SQL against a real Postgres: what is left is counted per old KEK, a claim skips rows
 * another transaction holds (or waits, bounded), and the write is a compare-and-swap that leaves a
 * row alone if it is no longer what was claimed.
 */
import type { Pool } from 'pg';
import { Keyring } from '../../src/crypto';
import { claimBatch, countRowsToRewrap, pendingKeks, writeRewrapped } from '../../src/rotation/rewrap-store';
import { allRows, migratedDatabase, newKek, seedRows } from './support/rotation-kit';

const kek1 = newKek(1).kek;
const kek2 = newKek(2).kek;
const kek3 = newKek(3).kek;

describe('rewrap SQL', () => {
  let pool: Pool;
  beforeAll(async () => {
    ({ pool } = await migratedDatabase());
    await seedRows(pool, Keyring.single(kek1), 5, 'one');
    await seedRows(pool, Keyring.single(kek2), 3, 'two');
    await seedRows(pool, Keyring.single(kek3), 2, 'three');
  });
  afterAll(() => pool.end());

  test('what is left is every row not under the current KEK, listed per KEK in kek_id order', async () => {
    expect(await countRowsToRewrap(pool, kek2.kekId)).toBe(7);
    const pending = await pendingKeks(pool, kek2.kekId);
    expect(pending).toEqual(
      [
        { kekId: kek1.kekId, kekVersion: 1, rows: 5 },
        { kekId: kek3.kekId, kekVersion: 3, rows: 2 },
      ].sort((a, b) => (a.kekId < b.kekId ? -1 : 1)),
    );
    expect(await countRowsToRewrap(pool, 'kek_00000000000000000000000000000000')).toBe(10);
  });

  test('a claim takes rows of one KEK in id order after the cursor, and skips rows another transaction holds', async () => {
    const holder = await pool.connect();
    const claimer = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query("SELECT 1 FROM ota_groups WHERE id = 'one-00001' FOR UPDATE");
      await claimer.query('BEGIN');
      const claimed = await claimBatch(claimer, {
        kekId: kek1.kekId,
        afterId: 'one-00000',
        limit: 3,
        mode: 'skip-locked',
        lockTimeoutMs: 1000,
      });
      expect(claimed.map((row) => row.id)).toEqual(['one-00002', 'one-00003', 'one-00004']);
      await claimer.query('ROLLBACK');

      await claimer.query('BEGIN');
      await expect(
        claimBatch(claimer, { kekId: kek1.kekId, afterId: undefined, limit: 3, mode: 'wait', lockTimeoutMs: 100 }),
      ).rejects.toMatchObject({ code: '55P03' });
      await claimer.query('ROLLBACK');
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
      claimer.release();
    }
  });

  test('the write updates only rows still under the claimed KEK and secret version (a compare-and-swap)', async () => {
    const [row] = (await allRows(pool)).filter((candidate) => candidate.id === 'three-00000');
    const replacement = Buffer.from(row!.provision_secret_envelope);
    const client = await pool.connect();
    try {
      const stale = {
        ids: [row!.id],
        secretVersions: [row!.secret_version + 1],
        envelopes: [replacement],
        fromKekId: kek3.kekId,
        kekId: kek2.kekId,
        kekVersion: 2,
      };
      expect(await writeRewrapped(client, stale)).toBe(0);
      expect(
        await writeRewrapped(client, { ...stale, secretVersions: [row!.secret_version], fromKekId: kek1.kekId }),
      ).toBe(0);
      expect((await allRows(pool)).find((candidate) => candidate.id === row!.id)?.kek_id).toBe(kek3.kekId);
    } finally {
      client.release();
    }
  });
});
