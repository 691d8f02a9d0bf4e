/**
 * `npm run rewrap`: move every stored data key to the current KEK (no secret is decrypted).
 * A progress bar on a terminal, plain progress lines otherwise. Exit 0 only when no row is left
 * under a non-current KEK; 1 when rows remain (their KEK is missing, an envelope is damaged, the
 * run was interrupted) or the run failed; 2 for bad configuration or arguments.
 * Safe to run beside the service and beside other rewrap runs (batches are claimed SKIP LOCKED);
 * killed midway, every row is still readable and running it again finishes the job.
 * Options: --batch-size N (REWRAP_BATCH_SIZE), --concurrency N (batches in flight, default 2),
 * --crypto-threads N (default 1 on a machine with several cores, else 0), --quiet (no bar).
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar, Presets } from 'cli-progress';
import { Registry } from 'prom-client';
import { ConfigError, loadConfig } from '../src/config';
import { startEmbeddedPostgres } from '../src/db/embedded';
import { createPool } from '../src/db/pool';
import { createKeySource } from '../src/keys';
import { createLogger } from '../src/log/logger';
import { rewrapAll, type RewrapProgress, type RewrapRunResult } from '../src/rotation/rewrap';

const PLAIN_LINE_INTERVAL_MS = 1000;

interface ProgressReporter {
  update(progress: RewrapProgress): void;
  stop(): void;
}

function rateOf(rows: number, startedAt: number): number {
  return Math.round(rows / Math.max((Date.now() - startedAt) / 1000, 0.001));
}

function progressBar(startedAt: number): ProgressReporter {
  const bar = new SingleBar(
    {
      format: 'rewrap [{bar}] {value}/{total} rows | {rate} rows/s | ETA {eta_formatted} | failed {failed}',
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update(progress) {
      const rate = rateOf(progress.rewrapped, startedAt);
      if (!started) {
        bar.start(Math.max(progress.total, 1), 0, { rate, failed: 0 });
        started = true;
      }
      bar.setTotal(Math.max(progress.total, progress.rewrapped + progress.failed, 1));
      bar.update(progress.rewrapped + progress.failed, { rate, failed: progress.failed });
    },
    stop: () => bar.stop(),
  };
}

/** For logs and pipes: the first batch, then a line a second at most. */
function plainLines(startedAt: number): ProgressReporter {
  let lastLineAt: number | undefined;
  return {
    update(progress) {
      const now = Date.now();
      if (lastLineAt !== undefined && now - lastLineAt < PLAIN_LINE_INTERVAL_MS) return;
      lastLineAt = now;
      const rate = rateOf(progress.rewrapped, startedAt);
      const left = Math.max(progress.total - progress.rewrapped - progress.failed, 0);
      const eta = rate > 0 ? `${Math.ceil(left / rate)}s` : '?';
      process.stdout.write(
        `rewrap: ${progress.rewrapped}/${progress.total} rows, ${rate} rows/s, ETA ${eta}, failed ${progress.failed}\n`,
      );
    },
    stop: () => undefined,
  };
}

function wholeNumber(value: string | undefined, fallback: number, min: number, max: number, name: string): number {
  const parsed = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max)
    throw new ConfigError(`--${name}`, `must be a whole number from ${min} to ${max}`);
  return parsed;
}

function summary(result: RewrapRunResult, currentKekId: string, seconds: number): string[] {
  const lines = [
    `rewrap: ${result.rewrapped} rows moved to ${currentKekId} in ${seconds.toFixed(1)}s (${Math.round(result.rewrapped / Math.max(seconds, 0.001))} rows/s); ${result.failed} failed; ${result.remaining} left under other KEKs`,
  ];
  for (const kek of result.unavailableKeks)
    lines.push(
      `  ${kek.rows} rows under ${kek.kekId}, which the key source does not hold: put it back in the key source, then run again`,
    );
  for (const failure of result.failures.slice(0, 20)) lines.push(`  ${failure.groupId}: ${failure.reason}`);
  if (result.stopped) lines.push('  interrupted: run it again to finish');
  return lines;
}

async function main(): Promise<number> {
  let config;
  let batchSize: number;
  let concurrency: number;
  let cryptoThreads: number;
  let quiet: boolean;
  try {
    const { values } = parseArgs({
      options: {
        'batch-size': { type: 'string' },
        concurrency: { type: 'string' },
        'crypto-threads': { type: 'string' },
        quiet: { type: 'boolean', default: false },
      },
    });
    config = loadConfig(process.env, { listens: false });
    batchSize = wholeNumber(values['batch-size'], config.rewrap.batchSize, 1, 10_000, 'batch-size');
    concurrency = wholeNumber(values.concurrency, 2, 1, 8, 'concurrency');
    // One crypto thread puts a second core to work beside the main thread (which talks to Postgres);
    // on two cores, a second thread measured slower and 40 MB bigger. A single core gains nothing.
    cryptoThreads = wholeNumber(values['crypto-threads'], availableParallelism() > 1 ? 1 : 0, 0, 8, 'crypto-threads');
    quiet = values.quiet;
  } catch (error) {
    if (error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(
        `provsec rewrap: ${error instanceof ConfigError ? 'configuration error: ' : ''}${(error as Error).message}\n`,
      );
      return 2;
    }
    throw error;
  }
  const logger = createLogger({
    level: config.logLevel === 'info' ? 'warn' : config.logLevel,
    base: { component: 'rewrap' },
  });
  const embedded =
    config.databaseUrl === undefined
      ? await startEmbeddedPostgres({ dataDir: join(config.stateDir, 'postgres'), port: config.embeddedPostgresPort })
      : undefined;
  // One connection per lane, plus one for the counts between passes.
  const pool = createPool({ connectionString: config.databaseUrl ?? embedded!.adminUrl, max: concurrency + 1 }, logger);
  const keys = createKeySource(
    { ...config.keySource, production: config.production },
    { logger, registry: new Registry() },
  );
  let interrupted = false;
  const interrupt = () => {
    if (!interrupted)
      process.stderr.write('provsec rewrap: stopping after the batches in flight (all or nothing each)\n');
    interrupted = true;
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    await keys.start();
    const keyring = keys.currentKeyring();
    if (!keyring) {
      process.stderr.write(
        `provsec rewrap: no keyring could be loaded from the ${config.keySource.kind} key source (${keys.status().lastError ?? 'unknown error'})\n`,
      );
      return 1;
    }
    const startedAt = Date.now();
    const reporter = process.stdout.isTTY && !quiet ? progressBar(startedAt) : plainLines(startedAt);
    let result: RewrapRunResult;
    try {
      result = await rewrapAll(
        { pool, keys },
        {
          batchSize,
          concurrency,
          cryptoThreads,
          onProgress: (progress) => reporter.update(progress),
          shouldStop: () => interrupted,
        },
      );
    } finally {
      reporter.stop();
    }
    const seconds = (Date.now() - startedAt) / 1000;
    for (const line of summary(result, keys.currentKeyring()?.current.kekId ?? keyring.current.kekId, seconds))
      process.stdout.write(`${line}\n`);
    return result.remaining === 0 ? 0 : 1;
  } finally {
    await keys.stop();
    await pool.end();
    await embedded?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`provsec rewrap: ${(error as Error).message}\n`);
    process.exit(1);
  },
);
