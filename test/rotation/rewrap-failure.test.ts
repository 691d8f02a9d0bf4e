/**
 * All or nothing (Vault's Test_StorageErrorSafety habit): a batch whose UPDATE or COMMIT fails is
 * rolled back whole, and the rewrap command killed with SIGKILL mid-run leaves every row readable
 * throughout and after; running again finishes the job.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { Keyring } from '../../src/crypto';
import { rewrapAll } from '../../src/rotation/rewrap';
import {
  allRows,
  fixedKeys,
  interceptingPool,
  isRewrapUpdate,
  migratedDatabase,
  newKek,
  openEveryRow,
  rowsPerKek,
  runRewrapCli,
  secretFor,
  seedRows,
  type StoredRow,
} from './support/rotation-kit';

const first = newKek(1);
const second = newKek(2);
const underKek1 = Keyring.single(first.kek);
const rotated = Keyring.create([first.kek, second.kek], second.kek.kekId);

class InjectedStorageError extends Error {
  override readonly name = 'InjectedStorageError';
}

function byId(rows: StoredRow[]): Map<string, StoredRow> {
  return new Map(rows.map((row) => [row.id, row]));
}

describe('rewrap under failure', () => {
  let pool: Pool;
  let url: string;
  beforeEach(async () => {
    ({ pool, url } = await migratedDatabase());
  });
  afterEach(() => pool.end());

  test.each([
    ['UPDATE', (sql: string) => isRewrapUpdate(sql)],
    ['COMMIT', (sql: string) => sql === 'COMMIT'],
  ])('a batch whose %s fails midway is rolled back entirely, and a second run finishes', async (_what, isTarget) => {
    const ids = await seedRows(pool, underKek1, 60);
    const before = byId(await allRows(pool));
    let seen = 0;
    // The third batch's statement fails: batches one and two are committed, three must leave no trace.
    const failing = interceptingPool(pool, (sql) => {
      if (isTarget(sql) && ++seen === 3) throw new InjectedStorageError('storage failed midway');
    });
    await expect(rewrapAll({ pool: failing, keys: fixedKeys(rotated) }, { batchSize: 10 })).rejects.toThrow(
      InjectedStorageError,
    );

    const after = await allRows(pool);
    expect(await rowsPerKek(pool)).toEqual({ [first.kek.kekId]: 40, [second.kek.kekId]: 20 });
    const thirdBatch = ids.slice(20, 30);
    for (const row of after.filter((candidate) => thirdBatch.includes(candidate.id))) {
      const original = before.get(row.id)!;
      expect(row.kek_id).toBe(first.kek.kekId);
      expect(row.kek_version).toBe(1);
      expect(row.provision_secret_envelope.equals(original.provision_secret_envelope)).toBe(true);
    }
    // Every row opens, whichever side of the failure it is on.
    expect((await openEveryRow(pool, rotated)).size).toBe(ids.length);

    const resumed = await rewrapAll({ pool, keys: fixedKeys(rotated) }, { batchSize: 10 });
    expect(resumed).toMatchObject({ rewrapped: 40, remaining: 0, failed: 0 });
    const secrets = await openEveryRow(pool, Keyring.single(second.kek));
    for (const id of ids) expect(secrets.get(id)).toBe(secretFor(id));
  });

  test('the rewrap command killed with SIGKILL mid-run leaves every row readable throughout and after; running it again finishes', async () => {
    const ids = await seedRows(pool, underKek1, 2000);
    const dir = mkdtempSync(join(tmpdir(), 'provsec-rewrap-kill-'));
    const keyFile = join(dir, 'provisioning-key');
    writeFileSync(keyFile, JSON.stringify({ current: 2, keys: { '1': first.hex, '2': second.hex } }));
    const env = { DATABASE_URL: url, KEY_SOURCE: 'file', KEY_FILE: keyFile, PROVSEC_STATE_DIR: dir };

    // A reader opens every row again and again while the command runs and dies.
    let reading = true;
    let sweeps = 0;
    const reader = (async () => {
      while (reading) {
        expect((await openEveryRow(pool, rotated)).size).toBe(ids.length);
        sweeps += 1;
      }
    })();
    const killed = await runRewrapCli(
      env,
      ['--batch-size', '20', '--concurrency', '1', '--crypto-threads', '0'],
      (stdout) => /^rewrap: [1-9]\d*\//m.test(stdout),
    );
    expect(killed.signal).toBe('SIGKILL');
    const partial = await rowsPerKek(pool);
    expect(partial[second.kek.kekId]).toBeGreaterThan(0);
    expect(partial[first.kek.kekId]).toBeGreaterThan(0);

    const rerun = await runRewrapCli(env, ['--batch-size', '200']);
    reading = false;
    await reader;
    expect(sweeps).toBeGreaterThan(0);
    expect(rerun.code).toBe(0);
    expect(rerun.stdout).toContain(`rewrap: ${partial[first.kek.kekId]} rows moved`);
    expect(await rowsPerKek(pool)).toEqual({ [second.kek.kekId]: ids.length });
    const secrets = await openEveryRow(pool, Keyring.single(second.kek));
    for (const id of ids) expect(secrets.get(id)).toBe(secretFor(id));
  });
});
