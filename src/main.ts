/**
 * Process entry point: configuration errors become one line and exit code 2; SIGTERM/SIGINT drain
 * and exit 0.
 */
import { ConfigError, loadConfig, type Config } from './config';
import { createLogger } from './log/logger';
import { startService } from './runtime';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`provsec: configuration error: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });
  let service;
  try {
    service = await startService(config, logger);
  } catch (error) {
    logger.fatal({ errorName: (error as Error).name, reason: (error as Error).message }, 'provsec failed to start');
    process.exitCode = 1;
    return;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    service
      .stop()
      .then((drained) => {
        logger.info({ drained }, 'stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
