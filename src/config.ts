/**
 * Configuration: environment variables only, parsed and validated once at start-up.
 * A bad value stops the process with one line naming the variable (see main.ts).
 */
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { APP_ROOT } from './app-root';
import { databaseUrlProblem, httpsProblem } from './transport-security';
import type { DevKeySourceOptions } from './keys/dev-key-source';
import type { FileKeySourceOptions } from './keys/file-key-source';
import { KEY_SOURCE_KINDS } from './keys/key-source';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/** KEY_SOURCE=dev: the options the dev key source takes (PROVSEC_STATE_DIR). */
export interface DevKeySourceConfig extends DevKeySourceOptions {
  readonly kind: 'dev';
}

/** KEY_SOURCE=file: KEY_FILE (default /vault/secrets/provisioning-key); the watch timings keep their defaults. */
export interface FileKeySourceConfig extends FileKeySourceOptions {
  readonly kind: 'file';
}

/** KEY_SOURCE=vault, flat as the environment names it; create-key-source.ts shapes it for VaultKeySource. */
export type VaultKeySourceConfig = {
  readonly kind: 'vault';
  /** VAULT_ADDR: Vault itself, or the Vault Agent's API proxy when auth is 'agent'. */
  readonly address: string;
  /** VAULT_KV_MOUNT (kv-dev), VAULT_KV_PATH (provisioning_secret_enc_key), VAULT_KV_FIELD (key). */
  readonly kvMount: string;
  readonly kvPath: string;
  readonly kvField: string;
  /** VAULT_K8S_MOUNT (kubernetes), VAULT_K8S_TOKEN_FILE. */
  readonly kubernetesMount: string;
  readonly kubernetesTokenFile: string;
  /** VAULT_NAMESPACE (sent as X-Vault-Namespace). */
  readonly namespace: string | undefined;
  /** VAULT_POLL_INTERVAL_MS (30000), VAULT_TIMEOUT_MS (2000, bounds every Vault call). */
  readonly pollIntervalMs: number;
  readonly timeoutMs: number;
} & (
  | { readonly auth: 'agent'; readonly kubernetesRole: string | undefined }
  /** VAULT_AUTH=kubernetes needs VAULT_K8S_ROLE, so the type has it. */
  | { readonly auth: 'kubernetes'; readonly kubernetesRole: string }
);

export type KeySourceConfig = DevKeySourceConfig | FileKeySourceConfig | VaultKeySourceConfig;

export type AuthConfig =
  | {
      mode: 'configured';
      issuer: string;
      audience: string;
      jwksUrl: string | undefined;
      jwksFile: string | undefined;
      /** Sent as a bearer token when fetching AUTH_JWKS_URL (the Kubernetes API server wants one). */
      jwksBearerTokenFile: string | undefined;
      maxTokenLifetimeSeconds: number;
      policyFile: string;
      /** AUTH_REQUIRE_RECIPIENT_KEY: refuse a policy with a rule that would answer secret reads in plaintext. */
      requireRecipientKey: boolean;
    }
  /** Dev only: tokens from `npm run token`, the dev policy in config/dev-policy.json. */
  | {
      mode: 'dev';
      audience: string;
      maxTokenLifetimeSeconds: number;
      policyFile: string;
      requireRecipientKey: boolean;
    };

/** The listener's certificate pair (PEM files, hot-reloaded); both may name one combined file. */
export interface ListenerTlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface Config {
  readonly nodeEnv: 'development' | 'test' | 'production';
  readonly production: boolean;
  readonly host: string;
  readonly port: number;
  /** Unset: plain HTTP (development, or production with TLS_DISABLE=true). */
  readonly tls: ListenerTlsConfig | undefined;
  /** TLS_DISABLE=true: production serving plaintext on purpose (e.g. behind a mutual-TLS mesh). */
  readonly tlsDisabled: boolean;
  /** Unset outside production: start the embedded Postgres in `stateDir`. */
  readonly databaseUrl: string | undefined;
  readonly databasePoolMax: number;
  readonly stateDir: string;
  readonly embeddedPostgresPort: number;
  readonly logLevel: string;
  readonly shutdownTimeoutMs: number;
  readonly migrateOnStart: boolean;
  readonly keySource: KeySourceConfig;
  /**
   * KEK_ACTIVATION_DELAY_SECONDS (default 120): a KEK version younger than this does not seal yet.
   * 120 s is twice the Vault Agent's render interval in k8s/base (1m), so every replica's key file
   * has had two renders to pick the version up before any replica seals with it.
   */
  readonly kekActivationDelaySeconds: number;
  readonly auth: AuthConfig;
  readonly secretReadRateLimitPerMinute: number;
  /** Repeated identical denials from one client are one audit row per this many seconds. */
  readonly auditDenialWindowSeconds: number;
  readonly rewrap: { readonly workerEnabled: boolean; readonly batchSize: number; readonly intervalMs: number };
}

const DEV_POLICY_FILE = join(APP_ROOT, 'config', 'dev-policy.json');

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number between ${min} and ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));
const bool = z.enum(['true', 'false'], { message: 'must be "true" or "false"' }).transform((value) => value === 'true');
const nonEmpty = z.string().trim().min(1, 'must not be empty');
const httpUrl = z
  .string()
  .url('must be a URL')
  .refine((value) => /^https?:\/\//.test(value), 'must be an http(s) URL');
const postgresUrl = z
  .string()
  .refine((value) => /^postgres(ql)?:\/\/[^\s]+$/.test(value), 'must be a postgres:// connection URL');

/** Reads one variable through a schema; unset/empty uses the default (undefined = optional). */
function read<T>(env: Env, name: string, schema: z.ZodType<T>, fallback?: string): T {
  const raw = env[name];
  const value = raw === undefined || raw === '' ? fallback : raw;
  if (value === undefined) {
    const result = schema.safeParse(undefined);
    if (result.success) return result.data;
    throw new ConfigError(name, 'is required');
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ConfigError(name, result.error.issues[0]?.message ?? 'is invalid');
  }
  return result.data;
}

function optional<T>(env: Env, name: string, schema: z.ZodType<T>): T | undefined {
  return read(env, name, schema.optional());
}

function required<T>(env: Env, name: string, schema: z.ZodType<T>, why: string): T {
  const value = optional(env, name, schema);
  if (value === undefined) throw new ConfigError(name, `is required ${why}`);
  return value;
}

export interface LoadConfigOptions {
  /**
   * false for the one-off Jobs (migrate, rewrap), which open no listener: the production rule that
   * the listener must be TLS does not concern them. Everything else (TLS to Postgres) still does.
   */
  readonly listens?: boolean;
}

export function loadConfig(env: Env, options: LoadConfigOptions = {}): Config {
  const nodeEnv = read(
    env,
    'NODE_ENV',
    z.enum(['development', 'test', 'production'], { message: 'must be development, test or production' }),
    'development',
  );
  const production = nodeEnv === 'production';
  const databaseUrl = optional(env, 'DATABASE_URL', postgresUrl);
  // The embedded database is a developer convenience; production must name its real server.
  if (production && databaseUrl === undefined)
    throw new ConfigError(
      'DATABASE_URL',
      'is required when NODE_ENV=production (the embedded database is for development only)',
    );
  // Secrets, keys and tokens cross these connections: production wants them verified TLS (or on this host).
  if (production && databaseUrl !== undefined) refuseProblem('DATABASE_URL', databaseUrlProblem(databaseUrl));
  const stateDir = resolve(read(env, 'PROVSEC_STATE_DIR', nonEmpty, '.provsec'));

  return {
    nodeEnv,
    production,
    // Outside production the listener is plaintext (the quick start): keep it on this machine unless
    // HOST says otherwise. The image and the k8s env file set HOST=0.0.0.0 for the pod network.
    host: read(env, 'HOST', nonEmpty, production ? '0.0.0.0' : '127.0.0.1'),
    port: read(env, 'PORT', integer(0, 65535), '8080'),
    ...loadListenerTlsConfig(env, production && (options.listens ?? true)),
    databaseUrl,
    databasePoolMax: read(env, 'DATABASE_POOL_MAX', integer(1, 200), '10'),
    stateDir,
    embeddedPostgresPort: read(env, 'EMBEDDED_POSTGRES_PORT', integer(1, 65535), '54329'),
    logLevel: read(
      env,
      'LOG_LEVEL',
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
        message: 'must be one of fatal, error, warn, info, debug, trace, silent',
      }),
      'info',
    ),
    shutdownTimeoutMs: read(env, 'SHUTDOWN_TIMEOUT_MS', integer(0, 600_000), '10000'),
    migrateOnStart: read(env, 'MIGRATE_ON_START', bool, 'true'),
    keySource: loadKeySourceConfig(env, production, stateDir),
    auth: loadAuthConfig(env, production),
    kekActivationDelaySeconds: read(env, 'KEK_ACTIVATION_DELAY_SECONDS', integer(0, 86_400), '120'),
    secretReadRateLimitPerMinute: read(env, 'SECRET_READ_RATE_LIMIT_PER_MINUTE', integer(1, 1_000_000), '600'),
    auditDenialWindowSeconds: read(env, 'AUDIT_DENIAL_WINDOW_SECONDS', integer(1, 3600), '60'),
    rewrap: {
      workerEnabled: read(env, 'REWRAP_WORKER_ENABLED', bool, 'false'),
      batchSize: read(env, 'REWRAP_BATCH_SIZE', integer(1, 10_000), '1000'),
      intervalMs: read(env, 'REWRAP_INTERVAL_MS', integer(1000, 86_400_000), '60000'),
    },
  };
}

function refuseProblem(variable: string, problem: string | undefined): void {
  if (problem !== undefined) throw new ConfigError(variable, problem);
}

/** The URL as given, once production's https rule (src/transport-security.ts) holds for it. */
function productionHttps(production: boolean, variable: string, url: string): string {
  if (production) refuseProblem(variable, httpsProblem(url));
  return url;
}

function loadListenerTlsConfig(
  env: Env,
  productionListener: boolean,
): { tls: ListenerTlsConfig | undefined; tlsDisabled: boolean } {
  const certFile = optional(env, 'TLS_CERT_FILE', nonEmpty);
  const keyFile = optional(env, 'TLS_KEY_FILE', nonEmpty);
  const tlsDisabled = read(env, 'TLS_DISABLE', bool, 'false');
  // One without the other would leave the listener either keyless or silently plaintext.
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new ConfigError(
      'TLS_CERT_FILE and TLS_KEY_FILE',
      `must be set together (only ${certFile === undefined ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'} is set)`,
    );
  if (tlsDisabled && certFile !== undefined)
    throw new ConfigError('TLS_DISABLE', 'must not be true while TLS_CERT_FILE and TLS_KEY_FILE are set (choose one)');
  // Secrets and bearer tokens cross this listener: production serves plaintext only when told to on purpose.
  if (productionListener && certFile === undefined && !tlsDisabled)
    throw new ConfigError(
      'TLS_CERT_FILE',
      'and TLS_KEY_FILE are required when NODE_ENV=production (or TLS_DISABLE=true behind a mutual-TLS mesh)',
    );
  return {
    tls: certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : undefined,
    tlsDisabled,
  };
}

function loadKeySourceConfig(env: Env, production: boolean, stateDir: string): KeySourceConfig {
  const kindSchema = z.enum(KEY_SOURCE_KINDS, { message: `must be ${oneOf(KEY_SOURCE_KINDS)}` });
  // Production must say where its key comes from; a silently generated key would be lost data.
  const kind = production
    ? required(env, 'KEY_SOURCE', kindSchema, 'when NODE_ENV=production (file or vault)')
    : read(env, 'KEY_SOURCE', kindSchema, 'dev');
  if (kind === 'dev') {
    if (production) throw new ConfigError('KEY_SOURCE', 'dev is refused when NODE_ENV=production (use file or vault)');
    return { kind, stateDir };
  }
  if (kind === 'file') return { kind, keyFile: read(env, 'KEY_FILE', nonEmpty, '/vault/secrets/provisioning-key') };
  const auth = read(
    env,
    'VAULT_AUTH',
    z.enum(['agent', 'kubernetes'], { message: 'must be agent or kubernetes' }),
    'agent',
  );
  const common = {
    kind,
    address: productionHttps(production, 'VAULT_ADDR', required(env, 'VAULT_ADDR', httpUrl, 'when KEY_SOURCE=vault')),
    kvMount: read(env, 'VAULT_KV_MOUNT', nonEmpty, 'kv-dev'),
    kvPath: read(env, 'VAULT_KV_PATH', nonEmpty, 'provisioning_secret_enc_key'),
    kvField: read(env, 'VAULT_KV_FIELD', nonEmpty, 'key'),
  };
  const role =
    auth === 'kubernetes'
      ? ({ auth, kubernetesRole: required(env, 'VAULT_K8S_ROLE', nonEmpty, 'when VAULT_AUTH=kubernetes') } as const)
      : ({ auth, kubernetesRole: optional(env, 'VAULT_K8S_ROLE', nonEmpty) } as const);
  return {
    ...common,
    ...role,
    kubernetesMount: read(env, 'VAULT_K8S_MOUNT', nonEmpty, 'kubernetes'),
    // Not the automounted token: its audience is the API server, and the role vault/setup.sh
    // writes is bound to audience `vault` (the plugin answers any other with 403). A projected
    // token for `vault` mounted here is the documented setup (docs/deploy.md).
    kubernetesTokenFile: read(env, 'VAULT_K8S_TOKEN_FILE', nonEmpty, '/var/run/secrets/vault/token'),
    namespace: optional(env, 'VAULT_NAMESPACE', nonEmpty),
    pollIntervalMs: read(env, 'VAULT_POLL_INTERVAL_MS', integer(1000, 3_600_000), '30000'),
    timeoutMs: read(env, 'VAULT_TIMEOUT_MS', integer(100, 60_000), '2000'),
  };
}

/** "a, b or c": the allowed values in a message, from the same list the schema checks. */
function oneOf(values: readonly string[]): string {
  return values.length < 2 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
}

function loadAuthConfig(env: Env, production: boolean): AuthConfig {
  const audience = read(env, 'AUTH_AUDIENCE', nonEmpty, 'provsec');
  const maxTokenLifetimeSeconds = read(env, 'AUTH_MAX_TOKEN_LIFETIME', integer(60, 86_400), '3600');
  const jwksUrl = optional(env, 'AUTH_JWKS_URL', httpUrl);
  if (jwksUrl !== undefined) productionHttps(production, 'AUTH_JWKS_URL', jwksUrl);
  const jwksFile = optional(env, 'AUTH_JWKS_FILE', nonEmpty);
  const issuer = optional(env, 'AUTH_ISSUER', nonEmpty);
  const jwksBearerTokenFile = optional(env, 'AUTH_JWKS_BEARER_TOKEN_FILE', nonEmpty);
  const policyFile = optional(env, 'AUTH_POLICY_FILE', nonEmpty);
  const requireRecipientKey = read(env, 'AUTH_REQUIRE_RECIPIENT_KEY', bool, 'false');
  if (jwksUrl !== undefined && jwksFile !== undefined)
    throw new ConfigError('AUTH_JWKS_FILE', 'must not be set together with AUTH_JWKS_URL (choose one key set)');
  const configured = jwksUrl !== undefined || jwksFile !== undefined || issuer !== undefined;
  if (!configured) {
    // The dev signer is a shortcut for a laptop: production must trust a real issuer.
    if (production)
      throw new ConfigError(
        'AUTH_ISSUER',
        'is required when NODE_ENV=production (with AUTH_JWKS_URL or AUTH_JWKS_FILE); the dev token signer is refused',
      );
    return {
      mode: 'dev',
      audience,
      maxTokenLifetimeSeconds,
      policyFile: policyFile ?? DEV_POLICY_FILE,
      requireRecipientKey,
    };
  }
  if (issuer === undefined)
    throw new ConfigError('AUTH_ISSUER', 'is required when AUTH_JWKS_URL or AUTH_JWKS_FILE is set');
  if (jwksUrl === undefined && jwksFile === undefined)
    throw new ConfigError('AUTH_JWKS_URL', 'or AUTH_JWKS_FILE is required when AUTH_ISSUER is set');
  if (policyFile === undefined)
    throw new ConfigError('AUTH_POLICY_FILE', 'is required when AUTH_ISSUER is set (no policy means no access)');
  if (jwksBearerTokenFile !== undefined && jwksUrl === undefined)
    throw new ConfigError('AUTH_JWKS_BEARER_TOKEN_FILE', 'only applies with AUTH_JWKS_URL');
  return {
    mode: 'configured',
    issuer,
    audience,
    jwksUrl,
    jwksFile,
    jwksBearerTokenFile,
    maxTokenLifetimeSeconds,
    policyFile,
    requireRecipientKey,
  };
}
