import { ConfigError, loadConfig, type Env } from '../src/config';
import { thrownBy } from './support/thrown';

const PRODUCTION_BASE: Env = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://provsec@db.internal:5432/provsec?sslmode=verify-full',
  KEY_SOURCE: 'file',
  AUTH_ISSUER: 'https://kubernetes.default.svc.cluster.local',
  AUTH_JWKS_URL: 'https://kubernetes.default.svc.cluster.local/openid/v1/jwks',
  AUTH_POLICY_FILE: '/etc/provsec/policy.json',
  TLS_CERT_FILE: '/vault/secrets/serving-tls.pem',
  TLS_KEY_FILE: '/vault/secrets/serving-tls.pem',
};

function configErrorFor(env: Env): ConfigError {
  const refused = thrownBy(ConfigError, () => loadConfig(env));
  expect(refused).toBeInstanceOf(ConfigError);
  return refused as ConfigError;
}

describe('loadConfig', () => {
  test('an empty environment gives the development defaults: embedded database, dev key, dev tokens', () => {
    const config = loadConfig({});
    expect(config.production).toBe(false);
    expect(config.port).toBe(8080);
    // The plaintext development listener stays on this machine.
    expect(config.host).toBe('127.0.0.1');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.stateDir).toMatch(/\.provsec$/);
    expect(config.keySource.kind).toBe('dev');
    expect(config.auth.mode).toBe('dev');
    expect(config.shutdownTimeoutMs).toBe(10000);
    expect(config.rewrap.workerEnabled).toBe(false);
  });

  test('a complete production environment loads', () => {
    const config = loadConfig(PRODUCTION_BASE);
    expect(config.production).toBe(true);
    expect(config.host).toBe('0.0.0.0');
    expect(config.keySource).toEqual({ kind: 'file', keyFile: '/vault/secrets/provisioning-key' });
    expect(config.auth).toMatchObject({ mode: 'configured', audience: 'provsec', maxTokenLifetimeSeconds: 3600 });
  });

  test.each<[string, string, Env, RegExp]>([
    ['NODE_ENV unknown', 'NODE_ENV', { NODE_ENV: 'staging' }, /development, test or production/],
    ['PORT not a number', 'PORT', { PORT: 'eighty' }, /whole number/],
    ['PORT out of range', 'PORT', { PORT: '70000' }, /at most 65535/],
    ['DATABASE_URL not postgres', 'DATABASE_URL', { DATABASE_URL: 'mysql://x' }, /postgres:\/\//],
    ['DATABASE_POOL_MAX zero', 'DATABASE_POOL_MAX', { DATABASE_POOL_MAX: '0' }, /at least 1/],
    ['EMBEDDED_POSTGRES_PORT bad', 'EMBEDDED_POSTGRES_PORT', { EMBEDDED_POSTGRES_PORT: '-1' }, /whole number/],
    ['LOG_LEVEL unknown', 'LOG_LEVEL', { LOG_LEVEL: 'loud' }, /one of/],
    ['SHUTDOWN_TIMEOUT_MS bad', 'SHUTDOWN_TIMEOUT_MS', { SHUTDOWN_TIMEOUT_MS: '1.5' }, /whole number/],
    ['MIGRATE_ON_START bad', 'MIGRATE_ON_START', { MIGRATE_ON_START: 'yes' }, /"true" or "false"/],
    ['KEY_SOURCE unknown', 'KEY_SOURCE', { KEY_SOURCE: 'env' }, /file, vault or dev/],
    ['VAULT_ADDR missing for vault', 'VAULT_ADDR', { KEY_SOURCE: 'vault' }, /required when KEY_SOURCE=vault/],
    ['VAULT_ADDR not a URL', 'VAULT_ADDR', { KEY_SOURCE: 'vault', VAULT_ADDR: 'vault:8200' }, /URL/],
    [
      'VAULT_AUTH unknown',
      'VAULT_AUTH',
      { KEY_SOURCE: 'vault', VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_AUTH: 'token' },
      /agent or kubernetes/,
    ],
    [
      'VAULT_K8S_ROLE missing',
      'VAULT_K8S_ROLE',
      { KEY_SOURCE: 'vault', VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_AUTH: 'kubernetes' },
      /required when VAULT_AUTH=kubernetes/,
    ],
    [
      'VAULT_POLL_INTERVAL_MS too small',
      'VAULT_POLL_INTERVAL_MS',
      { KEY_SOURCE: 'vault', VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_POLL_INTERVAL_MS: '10' },
      /at least 1000/,
    ],
    [
      'VAULT_TIMEOUT_MS bad',
      'VAULT_TIMEOUT_MS',
      { KEY_SOURCE: 'vault', VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TIMEOUT_MS: 'soon' },
      /whole number/,
    ],
    ['KEY_FILE blank', 'KEY_FILE', { KEY_SOURCE: 'file', KEY_FILE: '  ' }, /not be empty/],
    [
      'VAULT_KV_FIELD blank',
      'VAULT_KV_FIELD',
      { KEY_SOURCE: 'vault', VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_KV_FIELD: ' ' },
      /not be empty/,
    ],
    [
      'VAULT_TIMEOUT_MS zero (unbounded calls)',
      'VAULT_TIMEOUT_MS',
      { KEY_SOURCE: 'vault', VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_TIMEOUT_MS: '0' },
      /at least 100/,
    ],
    [
      'VAULT_POLL_INTERVAL_MS zero',
      'VAULT_POLL_INTERVAL_MS',
      { KEY_SOURCE: 'vault', VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_POLL_INTERVAL_MS: '0' },
      /at least 1000/,
    ],
    ['AUTH_JWKS_URL not http', 'AUTH_JWKS_URL', { AUTH_JWKS_URL: 'file:///etc/jwks' }, /URL/],
    [
      'AUTH_JWKS_URL and FILE together',
      'AUTH_JWKS_FILE',
      { AUTH_ISSUER: 'x', AUTH_JWKS_URL: 'https://a/jwks', AUTH_JWKS_FILE: '/j', AUTH_POLICY_FILE: '/p' },
      /not be set together/,
    ],
    ['AUTH_ISSUER missing with JWKS', 'AUTH_ISSUER', { AUTH_JWKS_FILE: '/j', AUTH_POLICY_FILE: '/p' }, /required/],
    ['AUTH_JWKS missing with issuer', 'AUTH_JWKS_URL', { AUTH_ISSUER: 'x', AUTH_POLICY_FILE: '/p' }, /required/],
    [
      'AUTH_JWKS_BEARER_TOKEN_FILE without URL',
      'AUTH_JWKS_BEARER_TOKEN_FILE',
      { AUTH_ISSUER: 'x', AUTH_JWKS_FILE: '/j', AUTH_POLICY_FILE: '/p', AUTH_JWKS_BEARER_TOKEN_FILE: '/t' },
      /only applies with AUTH_JWKS_URL/,
    ],
    ['AUTH_POLICY_FILE missing', 'AUTH_POLICY_FILE', { AUTH_ISSUER: 'x', AUTH_JWKS_FILE: '/j' }, /required/],
    ['AUTH_MAX_TOKEN_LIFETIME bad', 'AUTH_MAX_TOKEN_LIFETIME', { AUTH_MAX_TOKEN_LIFETIME: '0' }, /at least 60/],
    ['AUTH_AUDIENCE blank', 'AUTH_AUDIENCE', { AUTH_AUDIENCE: '   ' }, /not be empty/],
    [
      'SECRET_READ_RATE_LIMIT_PER_MINUTE bad',
      'SECRET_READ_RATE_LIMIT_PER_MINUTE',
      { SECRET_READ_RATE_LIMIT_PER_MINUTE: 'many' },
      /whole number/,
    ],
    ['REWRAP_WORKER_ENABLED bad', 'REWRAP_WORKER_ENABLED', { REWRAP_WORKER_ENABLED: '1' }, /"true" or "false"/],
    ['REWRAP_BATCH_SIZE too big', 'REWRAP_BATCH_SIZE', { REWRAP_BATCH_SIZE: '100000' }, /at most 10000/],
    ['REWRAP_INTERVAL_MS too small', 'REWRAP_INTERVAL_MS', { REWRAP_INTERVAL_MS: '5' }, /at least 1000/],
  ])('%s: the error names %s and says what is wrong', (_case, variable, env, problem) => {
    const error = configErrorFor(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(problem);
    expect(error.message.startsWith(`${variable}: `)).toBe(true);
    expect(error.message).not.toMatch(/\n/);
  });

  describe('production refuses the dev-only shortcuts', () => {
    test('no DATABASE_URL: the embedded database is refused', () => {
      const { DATABASE_URL: _omit, ...env } = PRODUCTION_BASE;
      expect(configErrorFor(env).variable).toBe('DATABASE_URL');
    });
    test('KEY_SOURCE must be named', () => {
      const { KEY_SOURCE: _omit, ...env } = PRODUCTION_BASE;
      expect(configErrorFor(env).message).toMatch(/KEY_SOURCE: is required when NODE_ENV=production/);
    });
    test('KEY_SOURCE=dev (the generated dev key) is refused', () => {
      expect(configErrorFor({ ...PRODUCTION_BASE, KEY_SOURCE: 'dev' }).message).toMatch(/dev is refused/);
    });
    test('no issuer: the dev token signer is refused', () => {
      const { AUTH_ISSUER: _a, AUTH_JWKS_URL: _b, AUTH_POLICY_FILE: _c, ...env } = PRODUCTION_BASE;
      expect(configErrorFor(env).message).toMatch(/dev token signer is refused/);
    });
  });
});
