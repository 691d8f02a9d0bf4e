/**
 * The crypto step of a batch, on the calling thread and on crypto threads (the compiled thread
 * script that `npm test` builds): good rows open under the new KEK alone, each bad row is reported
 * with its crypto error code and the rest go on, and the order of rows is kept.
 */
import { Keyring, openSecret, sealSecret } from '../../src/crypto';
import { inThreadRewrapCrypto, rewrapRows, type RewrapOutcome, type RowToRewrap } from '../../src/rotation/rewrap-rows';
import { createThreadedRewrapCrypto, CryptoThreadError } from '../../src/rotation/rewrap-thread-pool';
import { CRYPTO_THREAD_SCRIPT_BUILT, newKek, secretFor } from './support/rotation-kit';

const kek1 = newKek(1).kek;
const kek2 = newKek(2).kek;
const stranger = newKek(9).kek;
const rotated = Keyring.create([kek1, kek2], kek2.kekId);
const onlyKek2 = Keyring.single(kek2);

/** Rows 0..count-1 under KEK1, with three bad ones: damaged, another row's envelope, an unknown KEK. */
function rowsWithBadOnes(count: number): { rows: RowToRewrap[]; expectedFailures: Map<number, string> } {
  const rows = Array.from({ length: count }, (_, index) => {
    const groupId = `rows-${index}`;
    return {
      groupId,
      secretVersion: 1,
      envelope: sealSecret(Buffer.from(secretFor(groupId)), { groupId, secretVersion: 1 }, Keyring.single(kek1))
        .envelope,
    };
  });
  const damaged = Uint8Array.from(rows[3]!.envelope);
  damaged[40] = damaged[40]! ^ 0x01; // inside the wrapped data key
  rows[3] = { ...rows[3]!, envelope: damaged };
  rows[7] = { ...rows[7]!, envelope: rows[8]!.envelope }; // copied from another row: bound to rows-8
  rows[count - 1] = {
    ...rows[count - 1]!,
    envelope: sealSecret(Buffer.from('x'), { groupId: `rows-${count - 1}`, secretVersion: 1 }, Keyring.single(stranger))
      .envelope,
  };
  return {
    rows,
    expectedFailures: new Map([
      [3, 'decryption_failed'],
      [7, 'decryption_failed'],
      [count - 1, 'kek_unavailable'],
    ]),
  };
}

function expectOutcomes(rows: RowToRewrap[], outcomes: RewrapOutcome[], expectedFailures: Map<number, string>): void {
  expect(outcomes).toHaveLength(rows.length);
  outcomes.forEach((outcome, index) => {
    const expected = expectedFailures.get(index);
    if (expected) {
      expect(outcome).toEqual({ failure: expected });
      return;
    }
    if (!('envelope' in outcome)) throw new Error(`row ${index} failed: ${outcome.failure}`);
    const { groupId, secretVersion } = rows[index]!;
    expect(Buffer.from(openSecret(outcome.envelope, { groupId, secretVersion }, onlyKek2)).toString()).toBe(
      secretFor(groupId),
    );
  });
}

describe('rewrapping the rows of a batch', () => {
  test('on the calling thread: good rows open under the new KEK alone; damaged, misplaced and unknown-KEK rows are reported, the rest go on', async () => {
    const { rows, expectedFailures } = rowsWithBadOnes(250); // more than one slice between yields
    expectOutcomes(rows, await inThreadRewrapCrypto.rewrap(rows, rotated), expectedFailures);
    expectOutcomes(rows, rewrapRows(rows, rotated), expectedFailures);
  });

  test('on two crypto threads: the same outcomes, in the same order, and a closed pool refuses work', async () => {
    const threads = createThreadedRewrapCrypto({ threads: 2, script: CRYPTO_THREAD_SCRIPT_BUILT });
    try {
      const { rows, expectedFailures } = rowsWithBadOnes(300);
      expectOutcomes(rows, await threads.rewrap(rows, rotated), expectedFailures);
      // A new keyring (the next rotation) reaches the threads before the rows that need it.
      const kek3 = newKek(3).kek;
      const next = Keyring.create([kek2, kek3], kek3.kekId);
      const [underKek2] = await threads.rewrap(rows.slice(0, 1), rotated);
      if (!underKek2 || !('envelope' in underKek2)) throw new Error('rows-0 did not rewrap');
      const [underKek3] = await threads.rewrap(
        [{ groupId: 'rows-0', secretVersion: 1, envelope: underKek2.envelope }],
        next,
      );
      if (!underKek3 || !('envelope' in underKek3)) throw new Error('rows-0 did not rewrap to KEK3');
      expect(
        Buffer.from(
          openSecret(underKek3.envelope, { groupId: 'rows-0', secretVersion: 1 }, Keyring.single(kek3)),
        ).toString(),
      ).toBe(secretFor('rows-0'));
    } finally {
      await threads.close();
    }
    await expect(threads.rewrap(rowsWithBadOnes(10).rows, rotated)).rejects.toThrow(CryptoThreadError);
  });

  test('crypto threads without the compiled thread script are refused with a clear error', () => {
    expect(() => createThreadedRewrapCrypto({ threads: 1, script: '/nonexistent/rewrap-thread.js' })).toThrow(
      CryptoThreadError,
    );
  });
});
