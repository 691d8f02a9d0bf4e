import { Pool } from 'pg';
import type { Logger } from '../log/logger';

export function createPool(options: { connectionString: string; max: number }, logger: Logger): Pool {
  const pool = new Pool({
    connectionString: options.connectionString,
    max: options.max,
    // Bounded waits: a dead database must surface as a clean 503, not a hung request.
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
    query_timeout: 10_000,
    application_name: 'provsec',
  });
  // An idle client losing its server emits here; without a listener it would crash the process.
  pool.on('error', (error) => logger.warn({ err: { message: error.message } }, 'idle database connection lost'));
  return pool;
}
