/**
 * The optional background rewrap worker (REWRAP_WORKER_ENABLED): when the current KEK changes,
 * and every interval, it moves rows to the current KEK in batches. Safe to run on every replica at
 * once: batches are claimed with SKIP LOCKED.
 */
import type { Logger } from '../log/logger';
import type { KeySource } from '../keys/key-source';
import { rewrapAll, type RewrapDeps } from './rewrap';

export interface RewrapWorker {
  start(): void;
  /** Stops after the batch in progress; resolves when the worker is idle. */
  stop(): Promise<void>;
  /** Runs one pass now (also what the timer and keyring changes call). */
  runOnce(): Promise<void>;
}

export function createRewrapWorker(
  deps: RewrapDeps & { keys: Pick<KeySource, 'currentKeyring' | 'keyringFor' | 'onChange'>; logger: Logger },
  options: { batchSize: number; intervalMs: number },
): RewrapWorker {
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  let stopping = false;
  let running: Promise<void> | undefined;
  let again = false;

  async function pass(): Promise<void> {
    if (!deps.keys.currentKeyring()) return;
    const startedAt = Date.now();
    // One lane and crypto on this thread (in slices): a replica keeps serving while it rewraps.
    const result = await rewrapAll(deps, { batchSize: options.batchSize, concurrency: 1, shouldStop: () => stopping });
    if (result.rewrapped > 0 || result.failed > 0) {
      const seconds = (Date.now() - startedAt) / 1000;
      deps.logger.info(
        {
          rewrapped: result.rewrapped,
          failed: result.failed,
          remaining: result.remaining,
          rowsPerSecond: Math.round(result.rewrapped / Math.max(seconds, 0.001)),
        },
        'rewrap pass finished',
      );
    }
    for (const kek of result.unavailableKeks) {
      deps.logger.error(
        { kekId: kek.kekId, rows: kek.rows },
        'rows are under a KEK the key source does not hold; they stay unreadable until it is back',
      );
    }
    if (result.failures.length > 0)
      deps.logger.error(
        { failures: result.failures.slice(0, 20) },
        'some rows could not be rewrapped; they stay readable only while their KEK is present',
      );
  }

  function runOnce(): Promise<void> {
    if (running) {
      // A change arrived mid-pass: run once more after it, so nothing is left behind.
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await pass();
        } catch (error) {
          deps.logger.error(
            { errorName: (error as Error).name, reason: (error as Error).message },
            'rewrap pass failed; will retry',
          );
        }
      } while (again && !stopping);
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    start() {
      unsubscribe = deps.keys.onChange(() => void runOnce());
      timer = setInterval(() => void runOnce(), options.intervalMs);
      timer.unref();
      void runOnce();
    },
    async stop() {
      stopping = true;
      unsubscribe?.();
      if (timer) clearInterval(timer);
      await running;
    },
    runOnce,
  };
}
