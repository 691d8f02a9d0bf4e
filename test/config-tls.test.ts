/**
 * The configuration rules of issue 12: the listener's certificate pair, and (in production) TLS on
 * the listener and to everything the service calls. Each rule is tested in both directions.
 */
import { ConfigError, loadConfig, type Env } from '../src/config';

const PEM = '/vault/secrets/serving-tls.pem';
const PRODUCTION: Env = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://provsec@db.internal:5432/provsec?sslmode=verify-full',
  KEY_SOURCE: 'file',
  AUTH_ISSUER: 'https://kubernetes.default.svc.cluster.local',
  AUTH_JWKS_URL: 'https://kubernetes.default.svc/openid/v1/jwks',
  AUTH_POLICY_FILE: '/etc/provsec/policy.json',
  TLS_CERT_FILE: PEM,
  TLS_KEY_FILE: PEM,
};

function refusal(env: Env, options?: { listens: boolean }): string {
  try {
    loadConfig(env, options);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  return 'accepted';
}

describe('the listener certificate (TLS_CERT_FILE, TLS_KEY_FILE, TLS_DISABLE)', () => {
  test('both set: the listener serves TLS from them (they may name one combined file)', () => {
    expect(loadConfig({ TLS_CERT_FILE: PEM, TLS_KEY_FILE: PEM }).tls).toEqual({ certFile: PEM, keyFile: PEM });
  });

  test('neither set outside production: plain HTTP, the quick start unchanged', () => {
    expect(loadConfig({}).tls).toBeUndefined();
    expect(loadConfig({ NODE_ENV: 'test' }).tls).toBeUndefined();
  });

  test.each([
    ['TLS_CERT_FILE', { TLS_CERT_FILE: PEM }],
    ['TLS_KEY_FILE', { TLS_KEY_FILE: PEM }],
  ])('only %s set is an error naming both', (onlyOne, env) => {
    expect(refusal(env)).toBe(`TLS_CERT_FILE and TLS_KEY_FILE: must be set together (only ${onlyOne} is set)`);
  });

  test('TLS_DISABLE=true together with a certificate is contradictory and refused', () => {
    expect(refusal({ ...PRODUCTION, TLS_DISABLE: 'true' })).toMatch(/^TLS_DISABLE: must not be true while/);
    expect(refusal({ TLS_DISABLE: 'yes' })).toMatch(/^TLS_DISABLE: must be "true" or "false"/);
  });

  test('production without a certificate is refused, naming the variables', () => {
    const { TLS_CERT_FILE: _c, TLS_KEY_FILE: _k, ...env } = PRODUCTION;
    expect(refusal(env)).toBe(
      'TLS_CERT_FILE: and TLS_KEY_FILE are required when NODE_ENV=production (or TLS_DISABLE=true behind a mutual-TLS mesh)',
    );
  });

  test('production with TLS_DISABLE=true and no certificate loads, marked as disabled on purpose', () => {
    const { TLS_CERT_FILE: _c, TLS_KEY_FILE: _k, ...env } = PRODUCTION;
    const config = loadConfig({ ...env, TLS_DISABLE: 'true' });
    expect(config.tls).toBeUndefined();
    expect(config.tlsDisabled).toBe(true);
  });

  test('production with a certificate loads', () => {
    expect(loadConfig(PRODUCTION).tls).toEqual({ certFile: PEM, keyFile: PEM });
  });

  test('the one-off Jobs, which open no listener, need no certificate in production', () => {
    const { TLS_CERT_FILE: _c, TLS_KEY_FILE: _k, ...env } = PRODUCTION;
    expect(loadConfig(env, { listens: false }).tls).toBeUndefined();
  });
});
