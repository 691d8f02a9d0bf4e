/**
 * Wires the service together from a validated Config: database (embedded or DATABASE_URL),
 * migrations, HTTP. main.ts adds process concerns (signals, exit codes); tests call this directly.
 */
import { join } from 'node:path';
import type { Pool } from 'pg';
import { Registry } from 'prom-client';
import { SQL_DIR } from './app-root';
import type { Config } from './config';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './db/embedded';
import { runtimeRoleOwnsAuditLog } from './db/audit-log-ownership';
import { readMigrationFiles, runMigrations } from './db/migrate';
import { createPool } from './db/pool';
import { createApp } from './http/app';
import { listen } from './http/server';
import type { Logger } from './log/logger';
import { createAuditLog } from './audit/audit-log';
import { createDenialAudit, DENIAL_AUDIT_DEFAULTS } from './audit/denial-audit';
import {
  AccessPolicy,
  createTokenVerifier,
  devTrustedIssuer,
  ensureDevSigner,
  type TrustedIssuerOptions,
} from './auth';
import { withVerificationCache } from './auth/verification-cache';
import { createKeySource, type KeySource } from './keys';
import { auditRoutes } from './http/audit-routes';
import { authenticate } from './http/auth-middleware';
import { deviceGroupRoutes } from './http/device-group-routes';
import { serviceErrorMapper } from './http/error-mappers';
import { createSecretReadRateLimiter } from './http/rate-limit';
import { createServiceMetrics } from './metrics/service-metrics';
import { createDeviceGroupService } from './service/device-group-service';
import { createDeviceGroupStore } from './store/device-group-store';
import { keysRoutes } from './http/keys-routes';
import { openApiRoutes } from './http/openapi';
import { createKekUsageCounter } from './rotation/kek-usage';
import { createRewrapWorker } from './rotation/rewrap-worker';
import { registerDefaultMetrics } from './metrics/default-metrics';
import { registerKekRowsMetric } from './metrics/kek-rows-metric';
import {
  databaseCheck,
  keksForStoredRowsCheck,
  keyringCheck,
  migrationsCheck,
  servingCertificateCheck,
} from './readiness-checks';
import { ServingCertificate } from './tls/serving-certificate';

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
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((error: unknown) => logger.error({ err: error }, 'error during shutdown'));
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
    if (await runtimeRoleOwnsAuditLog(pool))
      logger.warn(
        'the database role of this service owns audit_events (or is a superuser): the audit log and the secret history are not append-only against it; run the service as a member of provsec_app (README, Database roles)',
      );

    const registry = new Registry();
    registerDefaultMetrics(registry);

    const keySource = createKeySource(
      { ...config.keySource, production: config.production },
      { logger, registry, kekActivationDelayMs: config.kekActivationDelaySeconds * 1000 },
    );
    await keySource.start();
    cleanups.push(() => keySource.stop());

    const metrics = createServiceMetrics(registry);
    const audit = createAuditLog(pool);
    const denials = createDenialAudit(
      { audit, logger: logger.child({ component: 'denial-audit' }) },
      { ...DENIAL_AUDIT_DEFAULTS, windowMs: config.auditDenialWindowSeconds * 1000 },
    );
    // Registered after the pool, so it runs before the pool closes: the last window's counts are written.
    cleanups.push(() => denials.stop());
    // Workers reuse one token for many reads: check each token's signature once per 30 s, not per request.
    const verifier = withVerificationCache(createTokenVerifier(await tokenVerifierOptions(config)));
    const auth = {
      verifier,
      policy: await AccessPolicy.load(config.auth.policyFile, { requireRecipientKey: config.auth.requireRecipientKey }),
      denials,
      metrics,
    };
    const service = createDeviceGroupService({ store: createDeviceGroupStore(pool), audit, keys: keySource });
    const secretReadLimiter = createSecretReadRateLimiter(
      { perMinute: config.secretReadRateLimitPerMinute },
      { denials, metrics },
    );

    const usage = createKekUsageCounter(pool);
    registerKekRowsMetric(registry, usage);
    if (config.rewrap.workerEnabled) {
      const worker = createRewrapWorker(
        { pool, keys: keySource, logger: logger.child({ component: 'rewrap-worker' }) },
        config.rewrap,
      );
      worker.start();
      cleanups.push(() => worker.stop());
    }

    const certificate = await startServingCertificate(config, logger, registry);
    if (certificate) cleanups.push(() => certificate.stop());

    let draining = false;
    const readinessChecks = [
      databaseCheck(pool),
      migrationsCheck(pool, await readMigrationFiles(SQL_DIR)),
      keyringCheck(keySource),
      keksForStoredRowsCheck(keySource, usage),
      ...(certificate ? [servingCertificateCheck(certificate)] : []),
    ];
    const app = createApp({
      logger,
      registry,
      readinessChecks,
      isDraining: () => draining,
      authenticateApi: authenticate(auth),
      routers: [
        openApiRoutes(),
        deviceGroupRoutes({ auth, service, metrics, secretReadLimiter }),
        auditRoutes({ auth, audit }),
        keysRoutes({ auth, keys: keySource, usage }),
      ],
      errorMappers: [serviceErrorMapper],
    });
    const server = await listen(app, { host: config.host, port: config.port, certificate });
    logger.info(
      { port: server.port, tls: certificate !== undefined, embeddedDatabase: config.databaseUrl === undefined },
      'provsec listening',
    );

    return {
      port: server.port,
      pool,
      registry,
      keySource,
      stop: async () => {
        draining = true;
        const drained = await server.close(config.shutdownTimeoutMs);
        if (!drained)
          logger.warn(
            { shutdownTimeoutMs: config.shutdownTimeoutMs },
            'drain timeout reached; remaining connections closed',
          );
        await cleanUp();
        return drained;
      },
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** The listener's certificate, watched for renewals; undefined means plain HTTP. */
async function startServingCertificate(
  config: Config,
  logger: Logger,
  registry: Registry,
): Promise<ServingCertificate | undefined> {
  if (config.tls === undefined) {
    // Config allows this in production only with TLS_DISABLE=true; say so once, loudly.
    if (config.production)
      logger.warn('TLS_DISABLE=true: the listener is PLAINTEXT HTTP; secrets and tokens cross it unencrypted');
    return undefined;
  }
  const certificate = await ServingCertificate.load(config.tls, {
    logger: logger.child({ component: 'tls' }),
    registry,
  });
  certificate.start();
  return certificate;
}

async function startEmbedded(config: Config, logger: Logger): Promise<EmbeddedPostgresHandle> {
  const dataDir = join(config.stateDir, 'postgres');
  logger.info(
    { dataDir, port: config.embeddedPostgresPort },
    'starting embedded Postgres (development default; set DATABASE_URL to use a server)',
  );
  const log = logger.child({ component: 'embedded-postgres' });
  return startEmbeddedPostgres({
    dataDir,
    port: config.embeddedPostgresPort,
    onLog: (message) => log.debug(message.trim()),
  });
}

async function tokenVerifierOptions(config: Config) {
  const { auth } = config;
  let issuer: TrustedIssuerOptions;
  if (auth.mode === 'dev') {
    // Dev only (config refuses this mode in production): trust the local signer behind `npm run token`.
    const signer = await ensureDevSigner(config.stateDir, {
      production: config.production,
      audience: auth.audience,
      maxTokenLifetimeSeconds: auth.maxTokenLifetimeSeconds,
    });
    issuer = devTrustedIssuer(signer, auth.audience);
  } else {
    issuer = {
      issuer: auth.issuer,
      audience: auth.audience,
      jwks:
        auth.jwksUrl !== undefined
          ? {
              kind: 'url',
              url: auth.jwksUrl,
              ...(auth.jwksBearerTokenFile !== undefined ? { bearerTokenFile: auth.jwksBearerTokenFile } : {}),
            }
          : { kind: 'file', path: auth.jwksFile as string },
    };
  }
  return { issuers: [issuer], maxTokenLifetimeSeconds: auth.maxTokenLifetimeSeconds };
}
