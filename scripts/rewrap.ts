/**
 * `npm run rewrap`: move every stored data key to the current KEK (no secret is decrypted).
 * A progress bar on a terminal, plain progress lines otherwise. Exit 0 only when no row is left
 * under a non-current KEK; 1 when rows remain (e.g. their KEK is missing); 2 for bad configuration.
 * Safe to run beside the service and beside other rewrap runs (batches are claimed SKIP LOCKED);
 * killed midway, every row is still readable and running it again finishes the job.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar, Presets } from 'cli-progress';
import { Registry } from 'prom-client';
import { ConfigError, loadConfig } from '../src/config';
import { startEmbeddedPostgres } from '../src/db/embedded';
import { createPool } from '../src/db/pool';
import { createKeySource } from '../src/keys';
import { createLogger } from '../src/log/logger';
import { rewrapAll, type RewrapProgress } from '../src/rotation/rewrap';

function progressReporter(interactive: boolean): { update(progress: RewrapProgress): void; stop(): void } {
  const startedAt = Date.now();
  if (interactive) {
    const bar = new SingleBar({ format: 'rewrap [{bar}] {value}/{total} rows | {rate} rows/s | ETA {eta_formatted} | failed {failed}', hideCursor: true }, Presets.shades_classic);
    let started = false;
    return {
      update(progress) {
        const rate = Math.round(progress.rewrapped / Math.max((Date.now() - startedAt) / 1000, 0.001));
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
  let lastLineAt = 0;
  return {
    update(progress) {
      const now = Date.now();
      if (now - lastLineAt < 1000 && progress.rewrapped + progress.failed < progress.total) return;
      lastLineAt = now;
      const seconds = Math.max((now - startedAt) / 1000, 0.001);
      const rate = progress.rewrapped / seconds;
      const left = Math.max(progress.total - progress.rewrapped - progress.failed, 0);
      const eta = rate > 0 ? `${Math.ceil(left / rate)}s` : '?';
      process.stdout.write(`rewrap: ${progress.rewrapped}/${progress.total} rows, ${Math.round(rate)} rows/s, ETA ${eta}, failed ${progress.failed}\n`);
    },
    stop: () => undefined,
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { 'batch-size': { type: 'string' }, quiet: { type: 'boolean', default: false } } });
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`provsec rewrap: configuration error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const batchSize = values['batch-size'] === undefined ? config.rewrap.batchSize : Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    process.stderr.write('provsec rewrap: --batch-size must be a whole number from 1 to 10000\n');
    return 2;
  }
  const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, base: { component: 'rewrap' } });
  const embedded = config.databaseUrl === undefined ? await startEmbeddedPostgres({ dataDir: join(config.stateDir, 'postgres'), port: config.embeddedPostgresPort }) : undefined;
  const pool = createPool({ connectionString: config.databaseUrl ?? embedded!.adminUrl, max: 2 }, logger);
  const keys = createKeySource({ ...config.keySource, production: config.production }, { logger, registry: new Registry() });
  let interrupted = false;
  process.on('SIGINT', () => (interrupted = true));
  process.on('SIGTERM', () => (interrupted = true));
  try {
    await keys.start();
    const keyring = keys.currentKeyring();
    if (!keyring) {
      process.stderr.write(`provsec rewrap: no keyring could be loaded from the ${config.keySource.kind} key source (${keys.status().lastError ?? 'unknown error'})\n`);
      return 1;
    }
    const reporter = progressReporter(Boolean(process.stdout.isTTY) && !values.quiet);
    const startedAt = Date.now();
    const result = await rewrapAll({ pool, keys }, { batchSize, onProgress: (progress) => reporter.update(progress), shouldStop: () => interrupted });
    reporter.stop();
    const seconds = (Date.now() - startedAt) / 1000;
    process.stdout.write(
      `rewrap: ${result.rewrapped} rows moved to ${keyring.current.kekId} in ${seconds.toFixed(1)}s (${Math.round(result.rewrapped / Math.max(seconds, 0.001))} rows/s); ${result.failed} failed; ${result.remaining} left under other KEKs\n`,
    );
    for (const failure of result.failures.slice(0, 20)) process.stdout.write(`  ${failure.groupId}: ${failure.reason}\n`);
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
