/**
 * Wires the service together from a validated Config: database (embedded or DATABASE_URL),
 * migrations, HTTP. main.ts adds process concerns (signals, exit codes); tests call this directly.
 */
import { join } from 'node:path';
import type { Pool } from 'pg';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { SQL_DIR } from './app-root';
import type { Config } from './config';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './db/embedded';
import { pendingMigrations, runMigrations } from './db/migrate';
import { createPool } from './db/pool';
import { createApp } from './http/app';
import type { ReadinessCheck } from './http/health-routes';
import { listen } from './http/server';
import type { Logger } from './log/logger';
import { createAuditLog } from './audit/audit-log';
import { AccessPolicy, createTokenVerifier, devTrustedIssuer, ensureDevSigner, type TrustedIssuerOptions } from './auth';
import { createKeySource, type KeySource } from './keys';
import { auditRoutes } from './http/audit-routes';
import { deviceGroupRoutes } from './http/device-group-routes';
import { serviceErrorMapper } from './http/error-mappers';
import { createSecretReadRateLimiter } from './http/rate-limit';
import { createServiceMetrics } from './metrics/service-metrics';
import { createDeviceGroupService } from './service/device-group-service';
import { createDeviceGroupStore } from './store/device-group-store';

export interface RunningService {
  readonly port: number;
  readonly pool: Pool;
  readonly registry: Registry;
  readonly keySource: KeySource;
  /** Graceful stop; resolves true when every in-flight request finished within the drain timeout. */
  stop(): Promise<boolean>;
}

export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanUp = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => logger.error({ err: error }, 'error during shutdown'));
  };
  try {
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === undefined) {
      const embedded = await startEmbedded(config, logger);
      cleanups.push(() => embedded.stop());
      databaseUrl = embedded.adminUrl;
    }
    const pool = createPool({ connectionString: databaseUrl, max: config.databasePoolMax }, logger);
    cleanups.push(() => pool.end());
    if (config.migrateOnStart) {
      const applied = await runMigrations(pool, SQL_DIR);
      logger.info({ applied }, applied.length ? 'migrations applied' : 'migrations up to date');
    }

    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'provsec_' });

    const keySource = createKeySource({ ...config.keySource, production: config.production }, { logger, registry });
    await keySource.start();
    cleanups.push(() => keySource.stop());

    const metrics = createServiceMetrics(registry);
    const audit = createAuditLog(pool);
    const auth = { verifier: createTokenVerifier(await tokenVerifierOptions(config)), policy: await AccessPolicy.load(config.auth.policyFile), audit, metrics };
    const service = createDeviceGroupService({ store: createDeviceGroupStore(pool), audit, keys: keySource });
    const secretReadLimiter = createSecretReadRateLimiter({ perMinute: config.secretReadRateLimitPerMinute }, { audit, metrics });

    let draining = false;
    const readinessChecks: ReadinessCheck[] = [databaseCheck(pool), migrationsCheck(pool), keyringCheck(keySource)];
    const app = createApp({
      logger,
      registry,
      readinessChecks,
      isDraining: () => draining,
      routers: [deviceGroupRoutes({ auth, service, metrics, secretReadLimiter }), auditRoutes({ auth, audit })],
      errorMappers: [serviceErrorMapper],
    });
    const server = await listen(app, { host: config.host, port: config.port });
    logger.info({ port: server.port, embeddedDatabase: config.databaseUrl === undefined }, 'provsec listening');

    return {
      port: server.port,
      pool,
      registry,
      keySource,
      stop: async () => {
        draining = true;
        const drained = await server.close(config.shutdownTimeoutMs);
        if (!drained) logger.warn({ shutdownTimeoutMs: config.shutdownTimeoutMs }, 'drain timeout reached; remaining connections closed');
        await cleanUp();
        return drained;
      },
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

async function startEmbedded(config: Config, logger: Logger): Promise<EmbeddedPostgresHandle> {
  const dataDir = join(config.stateDir, 'postgres');
  logger.info({ dataDir, port: config.embeddedPostgresPort }, 'starting embedded Postgres (development default; set DATABASE_URL to use a server)');
  const log = logger.child({ component: 'embedded-postgres' });
  return startEmbeddedPostgres({ dataDir, port: config.embeddedPostgresPort, onLog: (message) => log.debug(message.trim()) });
}

function databaseCheck(pool: Pool): ReadinessCheck {
  return {
    name: 'database',
    check: async () => {
      await pool.query('SELECT 1');
      return { ok: true };
    },
  };
}

function migrationsCheck(pool: Pool): ReadinessCheck {
  return {
    name: 'migrations',
    check: async () => {
      const pending = await pendingMigrations(pool, SQL_DIR);
      return pending.length === 0 ? { ok: true } : { ok: false, detail: `pending: ${pending.join(', ')}` };
    },
  };
}

/** Not ready until a keyring is loaded; afterwards a source outage does not flip readiness. */
function keyringCheck(keySource: KeySource): ReadinessCheck {
  return {
    name: 'keyring',
    check: async () => {
      const status = keySource.status();
      if (!keySource.currentKeyring()) return { ok: false, detail: `no keyring loaded from the ${status.kind} key source${status.lastError ? ` (${status.lastError})` : ''}` };
      return status.state === 'degraded' ? { ok: true, detail: `serving the cached keyring; last reload failed: ${status.lastError ?? 'unknown'}` } : { ok: true };
    },
  };
}

async function tokenVerifierOptions(config: Config) {
  const { auth } = config;
  let issuer: TrustedIssuerOptions;
  if (auth.mode === 'dev') {
    // Dev only (config refuses this mode in production): trust the local signer behind `npm run token`.
    const signer = await ensureDevSigner(config.stateDir, { production: config.production, audience: auth.audience, maxTokenLifetimeSeconds: auth.maxTokenLifetimeSeconds });
    issuer = devTrustedIssuer(signer, auth.audience);
  } else {
    issuer = {
      issuer: auth.issuer,
      audience: auth.audience,
      jwks: auth.jwksUrl !== undefined ? { kind: 'url', url: auth.jwksUrl } : { kind: 'file', path: auth.jwksFile as string },
    };
  }
  return { issuers: [issuer], maxTokenLifetimeSeconds: auth.maxTokenLifetimeSeconds };
}
