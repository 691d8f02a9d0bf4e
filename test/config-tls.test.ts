/**
 * The configuration rules of issue 12: the listener's certificate pair, and (in production) TLS on
 * the listener and to everything the service calls. Each rule is tested in both directions.
 */
import { ConfigError, loadConfig, type Env } from '../src/config';
import { thrownBy } from './support/thrown';

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
  const refused = thrownBy(ConfigError, () => loadConfig(env, options));
  return refused === undefined ? 'accepted' : refused.message;
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

describe('production: TLS to everything the service calls', () => {
  const withDatabase = (url: string) => refusal({ ...PRODUCTION, DATABASE_URL: url });

  test.each([
    'postgres://provsec@db.internal:5432/provsec?sslmode=verify-full',
    'postgres://provsec@db.internal:5432/provsec?sslmode=verify-ca&sslrootcert=/etc/provsec/db-ca/ca.crt',
    'postgresql://provsec@db.internal/provsec?sslrootcert=/etc/ca.crt&sslmode=verify-full',
    'postgres://provsec@127.0.0.1:5432/provsec',
    'postgres://provsec@127.10.0.3:6432/provsec',
    'postgres://provsec@localhost/provsec',
    'postgres://provsec@[::1]:5432/provsec',
    'postgres://provsec@%2Fvar%2Frun%2Fpostgresql/provsec',
    'postgres://provsec@db.internal/provsec?host=/var/run/postgresql',
  ])('DATABASE_URL %s is accepted', (url) => {
    expect(withDatabase(url)).toBe('accepted');
  });

  test.each([
    ['no sslmode', 'postgres://provsec@db.internal:5432/provsec', 'unset'],
    ['sslmode=require (no verification)', 'postgres://provsec@db.internal/provsec?sslmode=require', 'require'],
    ['sslmode=prefer', 'postgres://provsec@db.internal/provsec?sslmode=prefer', 'prefer'],
    ['sslmode=no-verify', 'postgres://provsec@db.internal/provsec?sslmode=no-verify', 'no-verify'],
    ['sslmode=disable', 'postgres://provsec@10.0.0.5/provsec?sslmode=disable', 'disable'],
    ['a later sslmode overriding', 'postgres://p@db.internal/p?sslmode=verify-full&sslmode=require', 'require'],
    ['a lookalike of loopback', 'postgres://provsec@127.0.0.1.example.com/provsec', 'unset'],
  ])('DATABASE_URL with %s is refused, naming the variable', (_case, url, mode) => {
    expect(withDatabase(url)).toBe(
      `DATABASE_URL: must ask for a verified TLS connection when NODE_ENV=production: add sslmode=verify-full (or verify-ca), with sslrootcert=<CA file> unless the system store holds the CA (sslmode is ${mode})`,
    );
  });

  test('verify-ca with libpq semantics and no CA file is refused (pg would not connect at all)', () => {
    expect(withDatabase('postgres://p@db.internal/p?sslmode=verify-ca&uselibpqcompat=true')).toMatch(
      /^DATABASE_URL: sslmode=verify-ca with uselibpqcompat=true needs sslrootcert/,
    );
  });

  test('outside production, a plaintext DATABASE_URL is still accepted (the test and dev databases)', () => {
    expect(refusal({ DATABASE_URL: 'postgres://provsec@db.internal/provsec' })).toBe('accepted');
  });

  const vault = (address: string) => refusal({ ...PRODUCTION, KEY_SOURCE: 'vault', VAULT_ADDR: address });
  test.each(['https://vault.vault.svc:8200', 'http://127.0.0.1:8200', 'http://localhost:8100', 'http://[::1]:8200'])(
    'VAULT_ADDR %s is accepted',
    (address) => {
      expect(vault(address)).toBe('accepted');
    },
  );
  test.each([
    'http://vault.vault.svc:8200',
    'http://10.0.0.7:8200',
    'http://128.0.0.1:8200',
    'http://localhost.evil:8200',
  ])('VAULT_ADDR %s is refused, naming the variable', (address) => {
    expect(vault(address)).toBe(
      'VAULT_ADDR: must be an https:// URL when NODE_ENV=production (http:// only to a loopback host)',
    );
  });
  test('outside production, VAULT_ADDR may be http:// anywhere (the local stand-in)', () => {
    expect(refusal({ KEY_SOURCE: 'vault', VAULT_ADDR: 'http://vault.local:8200' })).toBe('accepted');
  });

  const jwks = (url: string) => refusal({ ...PRODUCTION, AUTH_JWKS_URL: url });
  test.each(['https://kubernetes.default.svc/openid/v1/jwks', 'http://127.0.0.1:8001/openid/v1/jwks'])(
    'AUTH_JWKS_URL %s is accepted',
    (url) => {
      expect(jwks(url)).toBe('accepted');
    },
  );
  test('AUTH_JWKS_URL over http:// to another host is refused, naming the variable', () => {
    expect(jwks('http://issuer.example.com/jwks')).toBe(
      'AUTH_JWKS_URL: must be an https:// URL when NODE_ENV=production (http:// only to a loopback host)',
    );
  });
  test('outside production, AUTH_JWKS_URL may be http://', () => {
    expect(
      refusal({
        AUTH_ISSUER: 'https://issuer.test',
        AUTH_JWKS_URL: 'http://issuer.test/jwks',
        AUTH_POLICY_FILE: '/p.json',
      }),
    ).toBe('accepted');
  });
});
