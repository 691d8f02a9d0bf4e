/** `npm run migrate`: apply pending migrations and exit (used by the Kubernetes migration Job). */
import { SQL_DIR } from '../src/app-root';
import { ConfigError, loadConfig } from '../src/config';
import { startEmbeddedPostgres } from '../src/db/embedded';
import { runMigrations } from '../src/db/migrate';
import { createPool } from '../src/db/pool';
import { createLogger } from '../src/log/logger';
import { join } from 'node:path';

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig(process.env, { listens: false });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`provsec migrate: configuration error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel, base: { component: 'migrate' } });
  const embedded =
    config.databaseUrl === undefined
      ? await startEmbeddedPostgres({ dataDir: join(config.stateDir, 'postgres'), port: config.embeddedPostgresPort })
      : undefined;
  const pool = createPool({ connectionString: config.databaseUrl ?? embedded!.adminUrl, max: 1 }, logger);
  try {
    const applied = await runMigrations(pool, SQL_DIR);
    logger.info({ applied }, applied.length ? 'migrations applied' : 'migrations up to date');
    return 0;
  } catch (error) {
    logger.error({ reason: (error as Error).message }, 'migration failed');
    return 1;
  } finally {
    await pool.end();
    await embedded?.stop();
  }
}

// Errors the function does not turn into an exit code (a failed pool or Postgres shutdown) still end the Job
// with a failure and their message, not an unhandled rejection.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`provsec migrate: ${(error as Error).message}\n`);
    process.exit(1);
  },
);
