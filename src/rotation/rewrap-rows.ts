/**
 * The crypto step of a rewrap batch, as one pure function: each row's data key is unwrapped with
 * the KEK its envelope names and wrapped again under the keyring's current KEK (src/crypto
 * rewrapEnvelope). Runs on the calling thread or inside a crypto thread (rewrap-thread.ts).
 * Invariants: no secret is decrypted; a row that cannot be rewrapped is reported by its crypto
 * error code and left out, never written half-done; any other error is a bug and aborts the batch.
 */
import { bufferedSystemRandom, CryptoError, rewrapEnvelope, type Keyring, type RandomSource } from '../crypto';
import { needs } from '../crypto/needs';

export interface RowToRewrap {
  readonly groupId: string;
  readonly secretVersion: number;
  readonly envelope: Uint8Array;
}

/** A row's new envelope, or the crypto error code (kek_unavailable, decryption_failed, ...) that stopped it. */
export type RewrapOutcome = { readonly envelope: Uint8Array } | { readonly failure: string };

export function rewrapRows(rows: readonly RowToRewrap[], keyring: Keyring, random?: RandomSource): RewrapOutcome[] {
  const wrappingKekId = keyring.current.kekId;
  // A rewrap draws only nonces (one per row), so they can come from the CSPRNG a block at a time.
  const nonceSource = random ?? bufferedSystemRandom();
  return rows.map((row) => {
    let sealed;
    try {
      sealed = rewrapEnvelope(
        row.envelope,
        { groupId: row.groupId, secretVersion: row.secretVersion },
        keyring,
        nonceSource,
      );
    } catch (error) {
      if (error instanceof CryptoError) return { failure: error.code };
      throw error;
    }
    // The kek_id column is written once for the batch: every envelope must name that same KEK.
    needs(
      sealed.kekId === wrappingKekId,
      () => new Error('rewrapEnvelope wrapped under a KEK other than the keyring current'),
    );
    return { envelope: sealed.envelope };
  });
}

/** Where a batch's crypto runs: the calling thread, or a pool of crypto threads. */
export interface RewrapCrypto {
  rewrap(rows: readonly RowToRewrap[], keyring: Keyring): Promise<RewrapOutcome[]>;
  close(): Promise<void>;
}

/** Rows rewrapped between two yields to the event loop (about 5 ms of noble AES-GCM). */
const ROWS_PER_SLICE = 100;

/**
 * Crypto on the calling thread (the service's background worker, tests). It yields to the event
 * loop between slices of rows, so a batch of a thousand rows does not stall the requests a
 * service replica is serving for tens of milliseconds.
 */
export const inThreadRewrapCrypto: RewrapCrypto = Object.freeze({
  async rewrap(rows: readonly RowToRewrap[], keyring: Keyring): Promise<RewrapOutcome[]> {
    if (rows.length <= ROWS_PER_SLICE) return rewrapRows(rows, keyring);
    const outcomes: RewrapOutcome[] = [];
    for (let start = 0; start < rows.length; start += ROWS_PER_SLICE) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      outcomes.push(...rewrapRows(rows.slice(start, start + ROWS_PER_SLICE), keyring));
    }
    return outcomes;
  },
  close: () => Promise.resolve(),
});
