/**
 * Crypto threads for rewrap: the noble AES-GCM calls of a batch dominate a rewrap's CPU, and one
 * JavaScript thread does them one after another; worker threads spread them over the cores while
 * the main thread talks to Postgres. Only the command and the benchmark use this; the service's
 * background worker rewraps on its own thread.
 * Invariants: a thread holds at most one keyring (copies of the KEK bytes, zeroed when replaced
 * or when the pool closes); a thread answers every row with a new envelope or a crypto error code
 * (rewrapRows); a thread that fails or dies fails the batches it was working on, never half of a
 * batch silently.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Keyring } from '../crypto';
import { needs } from '../crypto/needs';
import { inThreadRewrapCrypto, type RewrapCrypto, type RewrapOutcome, type RowToRewrap } from './rewrap-rows';

/** Rows packed for a thread: envelopes end to end in one transferable buffer, with offsets. */
export interface PackedRows {
  readonly groupIds: string[];
  readonly secretVersions: number[];
  readonly packedEnvelopes: ArrayBuffer;
  /** Envelope i is packedEnvelopes[offsets[i] .. offsets[i + 1]). */
  readonly offsets: Int32Array;
}

export type ToThread =
  | {
      readonly kind: 'keyring';
      readonly keys: ReadonlyArray<{ readonly key: Uint8Array; readonly kekVersion: number | null }>;
      readonly currentKekId: string;
      readonly retiredKekIds: string[];
    }
  | ({ readonly kind: 'rewrap'; readonly jobId: number } & PackedRows)
  | { readonly kind: 'forget' };

export type FromThread =
  | {
      readonly jobId: number;
      readonly packedEnvelopes: ArrayBuffer;
      readonly offsets: Int32Array;
      readonly failures: Array<string | null>;
    }
  | { readonly jobId: number; readonly errorName: string; readonly errorMessage: string };

/** Below this many rows a batch is not split further: a message round trip costs about one row. */
const MIN_ROWS_PER_JOB = 64;
const CLOSE_TIMEOUT_MS = 2000;
/**
 * noble's AES-GCM leaves short-lived garbage on every call (key schedules, GHASH tables). A small
 * young generation keeps a thread's memory small and its scavenges cache-warm: at 8 MB a thread
 * measured about 35 MB less RSS than V8's default and no more CPU per row.
 */
const THREAD_YOUNG_GENERATION_MB = 8;

export class CryptoThreadError extends Error {
  override readonly name = 'CryptoThreadError';
}

export function packRows(rows: ReadonlyArray<{ readonly envelope: Uint8Array }>): {
  packed: Uint8Array;
  offsets: Int32Array;
} {
  let totalBytes = 0;
  for (const row of rows) totalBytes += row.envelope.length;
  const packed = new Uint8Array(totalBytes);
  const offsets = new Int32Array(rows.length + 1);
  let offset = 0;
  rows.forEach((row, index) => {
    packed.set(row.envelope, offset);
    offsets[index] = offset;
    offset += row.envelope.length;
  });
  offsets[rows.length] = offset;
  return { packed, offsets };
}

interface ThreadSlot {
  readonly worker: Worker;
  readonly jobs: Map<number, { resolve(outcomes: RewrapOutcome[]): void; reject(error: Error): void; rows: number }>;
  /** The keyring this thread holds, so it is sent only when it changes. */
  keyring: Keyring | undefined;
  queuedRows: number;
  exited: boolean;
}

/** The compiled thread entry; under ts-jest (no build) there is none, and the pool says so. */
export const CRYPTO_THREAD_SCRIPT = join(__dirname, 'rewrap-thread.js');

export function createThreadedRewrapCrypto(options: {
  threads: number;
  script?: string;
  callerShare?: number;
}): RewrapCrypto {
  const script = options.script ?? CRYPTO_THREAD_SCRIPT;
  needs(
    Number.isInteger(options.threads) && options.threads >= 1,
    () => new RangeError('crypto threads must be a whole number of at least 1'),
  );
  needs(
    existsSync(script),
    () =>
      new CryptoThreadError(
        `crypto threads need the compiled build (${script} is missing); run on the calling thread instead`,
      ),
  );
  let failure: Error | undefined;
  let nextJobId = 1;
  /**
   * The calling thread mostly waits on Postgres, so it takes a share of each batch too: half of
   * what one crypto thread gets (it also parses and writes the rows). One thread: a third.
   */
  const callerShare = options.callerShare ?? 1 / (2 * options.threads + 1);
  needs(callerShare >= 0 && callerShare < 1, () => new RangeError('the caller share must be from 0 to below 1'));

  const slots: ThreadSlot[] = Array.from({ length: options.threads }, () => {
    const slot: ThreadSlot = {
      worker: new Worker(script, { resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB } }),
      jobs: new Map(),
      keyring: undefined,
      queuedRows: 0,
      exited: false,
    };
    const failAll = (error: Error): void => {
      failure ??= error;
      for (const job of slot.jobs.values()) job.reject(error);
      slot.jobs.clear();
      slot.queuedRows = 0;
    };
    slot.worker.on('message', (message: FromThread) => {
      const job = slot.jobs.get(message.jobId);
      if (!job) return;
      slot.jobs.delete(message.jobId);
      slot.queuedRows -= job.rows;
      if ('errorName' in message) {
        job.reject(new CryptoThreadError(`a crypto thread failed: ${message.errorName}: ${message.errorMessage}`));
        return;
      }
      job.resolve(unpackOutcomes(message));
    });
    slot.worker.on('error', (error) => failAll(new CryptoThreadError(`a crypto thread crashed: ${error.name}`)));
    slot.worker.on('exit', (code) => {
      slot.exited = true;
      failAll(new CryptoThreadError(`a crypto thread exited (code ${code})`));
    });
    return slot;
  });

  function send(slot: ThreadSlot, rows: readonly RowToRewrap[], keyring: Keyring): Promise<RewrapOutcome[]> {
    if (slot.keyring !== keyring) {
      const entries = keyring.entries();
      // postMessage copies the key bytes (they are not transferred, which would detach the keyring's own).
      const message: ToThread = {
        kind: 'keyring',
        keys: entries.map((entry) => ({ key: entry.key, kekVersion: entry.kekVersion })),
        currentKekId: keyring.current.kekId,
        retiredKekIds: entries.filter((entry) => entry.retired).map((entry) => entry.kekId),
      };
      slot.worker.postMessage(message);
      slot.keyring = keyring;
    }
    const { packed, offsets } = packRows(rows);
    const jobId = nextJobId++;
    const message: ToThread = {
      kind: 'rewrap',
      jobId,
      groupIds: rows.map((row) => row.groupId),
      secretVersions: rows.map((row) => row.secretVersion),
      packedEnvelopes: packed.buffer as ArrayBuffer,
      offsets,
    };
    return new Promise<RewrapOutcome[]>((resolve, reject) => {
      slot.jobs.set(jobId, { resolve, reject, rows: rows.length });
      slot.queuedRows += rows.length;
      slot.worker.postMessage(message, [packed.buffer as ArrayBuffer]);
    });
  }

  return {
    async rewrap(rows, keyring) {
      if (failure) throw failure;
      if (rows.length === 0) return [];
      const callerRows = Math.floor(rows.length * callerShare);
      const threadRows = rows.slice(callerRows);
      const jobCount = Math.max(1, Math.min(slots.length, Math.floor(threadRows.length / MIN_ROWS_PER_JOB)));
      const rowsPerJob = Math.ceil(threadRows.length / jobCount);
      const jobs: Array<Promise<RewrapOutcome[]>> = [];
      for (let start = 0; start < threadRows.length; start += rowsPerJob) {
        // The least busy thread: with two batches in flight, their jobs interleave on the threads.
        const slot = slots.reduce((best, candidate) => (candidate.queuedRows < best.queuedRows ? candidate : best));
        jobs.push(send(slot, threadRows.slice(start, start + rowsPerJob), keyring));
      }
      const threadOutcomes = Promise.all(jobs);
      // Handled below; marked now so a thread failing while this thread works is not "unhandled".
      threadOutcomes.catch(() => undefined);
      // While the threads work, this thread does its own share (yielding, so Postgres replies still flow).
      const callerOutcomes = await inThreadRewrapCrypto.rewrap(rows.slice(0, callerRows), keyring);
      return [...callerOutcomes, ...(await threadOutcomes).flat()];
    },
    async close() {
      failure ??= new CryptoThreadError('the crypto thread pool is closed');
      await Promise.all(
        slots.map(async (slot) => {
          if (slot.exited) return;
          const exited = new Promise<void>((resolve) => slot.worker.once('exit', () => resolve()));
          // Asks the thread to zero its KEK copies and end; terminate() only if it does not.
          slot.worker.postMessage({ kind: 'forget' } satisfies ToThread);
          const timer = setTimeout(() => void slot.worker.terminate(), CLOSE_TIMEOUT_MS);
          await exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}

function unpackOutcomes(message: Extract<FromThread, { packedEnvelopes: ArrayBuffer }>): RewrapOutcome[] {
  const packed = new Uint8Array(message.packedEnvelopes);
  return message.failures.map((failure, index) =>
    failure === null ? { envelope: packed.subarray(message.offsets[index], message.offsets[index + 1]) } : { failure },
  );
}
