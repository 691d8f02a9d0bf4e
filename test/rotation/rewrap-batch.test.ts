/**
 * How a run copes with what it finds: rows that cannot be rewrapped are committed around (each bad
 * row left byte for byte as it was and reported by group id and crypto error code, nothing else),
 * and a rotation that arrives mid-run is followed to the newest KEK.
 */
import type { Pool } from 'pg';
import { Keyring } from '../../src/crypto';
import { rewrapAll } from '../../src/rotation/rewrap';
import {
  allRows,
  fixedKeys,
  migratedDatabase,
  newKek,
  openEveryRow,
  rowsPerKek,
  seedRows,
} from './support/rotation-kit';

const kek1 = newKek(1).kek;
const kek2 = newKek(2).kek;
const rotated = Keyring.create([kek1, kek2], kek2.kekId);

describe('a batch with rows that cannot be rewrapped', () => {
  let pool: Pool;
  beforeAll(async () => {
    ({ pool } = await migratedDatabase());
  });
  afterAll(() => pool.end());

  test('commits the good rows, leaves damaged and misplaced envelopes untouched, and reports them', async () => {
    const ids = await seedRows(pool, Keyring.single(kek1), 20);
    // A flipped bit in one wrapped data key; another row given a third row's envelope.
    await pool.query(
      'UPDATE ota_groups SET provision_secret_envelope = set_byte(provision_secret_envelope, 40, get_byte(provision_secret_envelope, 40) # 1) WHERE id = $1',
      [ids[4]],
    );
    await pool.query(
      'UPDATE ota_groups SET provision_secret_envelope = (SELECT provision_secret_envelope FROM ota_groups WHERE id = $2) WHERE id = $1',
      [ids[9], ids[10]],
    );
    const before = new Map((await allRows(pool)).map((row) => [row.id, row.provision_secret_envelope]));

    const result = await rewrapAll({ pool, keys: fixedKeys(rotated) }, { batchSize: 6 });
    expect(result).toMatchObject({ rewrapped: 18, failed: 2, remaining: 2 });
    expect(result.failures).toEqual(
      expect.arrayContaining([
        { groupId: ids[4], reason: 'decryption_failed' },
        { groupId: ids[9], reason: 'decryption_failed' },
      ]),
    );
    expect(result.failures).toHaveLength(2);
    expect(await rowsPerKek(pool)).toEqual({ [kek1.kekId]: 2, [kek2.kekId]: 18 });
    for (const row of await allRows(pool)) {
      if (row.id === ids[4] || row.id === ids[9])
        expect(row.provision_secret_envelope.equals(before.get(row.id)!)).toBe(true);
    }
  });
});

describe('a rotation arriving in the middle of a run', () => {
  test('the run follows it: every row ends under the newest KEK and opens with it alone', async () => {
    const { pool } = await migratedDatabase();
    try {
      const ids = await seedRows(pool, Keyring.single(kek1), 40);
      const kek3 = newKek(3).kek;
      let keyring = rotated;
      const keys = { currentKeyring: () => keyring, keyringFor: () => Promise.resolve(keyring) };
      let batches = 0;
      const result = await rewrapAll(
        { pool, keys },
        {
          batchSize: 5,
          // After the second batch the source swaps in a keyring whose current is KEK3.
          onBatch: () => {
            if (++batches === 2) keyring = Keyring.create([kek1, kek2, kek3], kek3.kekId);
          },
        },
      );
      expect(result.remaining).toBe(0);
      expect(await rowsPerKek(pool)).toEqual({ [kek3.kekId]: ids.length });
      expect((await openEveryRow(pool, Keyring.single(kek3))).size).toBe(ids.length);
    } finally {
      await pool.end();
    }
  });
});
