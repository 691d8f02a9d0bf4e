import { lstat, mkdtemp, readdir, readFile, rm, stat, chmod, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { AccessPolicy } from '../../src/auth/access-policy';
import { DEV_ISSUER, devTrustedIssuer, ensureDevSigner } from '../../src/auth/dev-signer';
import { AuthConfigError, DevModeRefusedError } from '../../src/auth/errors';
import { createTokenVerifier } from '../../src/auth/token-verifier';

let stateDir: string;

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'provsec-dev-signer-'));
});

afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

const notProduction = { production: false } as const;

test('the key pair is created on first use: private key 0600 in a 0700 folder, public jwks.json beside it', async () => {
  const signer = await ensureDevSigner(stateDir, notProduction);
  const folder = join(stateDir, 'dev-auth');
  expect(signer.issuer).toBe(DEV_ISSUER);
  expect(signer.jwksFile).toBe(join(folder, 'jwks.json'));
  expect((await stat(folder)).mode & 0o777).toBe(0o700);
  expect((await stat(join(folder, 'signing-key.pem'))).mode & 0o777).toBe(0o600);
  expect((await readdir(folder)).sort()).toEqual(['jwks.json', 'signing-key.pem']);
  const jwks = JSON.parse(await readFile(signer.jwksFile, 'utf8')) as { keys: object[] };
  expect(jwks.keys).toEqual([
    expect.objectContaining({ kty: 'OKP', crv: 'Ed25519', kid: signer.keyId, alg: 'EdDSA', use: 'sig' }),
  ]);
  expect(jwks.keys[0]).not.toHaveProperty('d');
});

test('later calls reuse the same key', async () => {
  const first = await ensureDevSigner(stateDir, notProduction);
  const keyBytes = await readFile(join(stateDir, 'dev-auth', 'signing-key.pem'));
  const second = await ensureDevSigner(stateDir, notProduction);
  expect(second.keyId).toBe(first.keyId);
  expect(await readFile(join(stateDir, 'dev-auth', 'signing-key.pem'))).toEqual(keyBytes);
});

test('concurrent first uses agree on one key', async () => {
  const signers = await Promise.all(Array.from({ length: 8 }, () => ensureDevSigner(stateDir, notProduction)));
  expect(new Set(signers.map((signer) => signer.keyId)).size).toBe(1);
  expect((await readdir(join(stateDir, 'dev-auth'))).sort()).toEqual(['jwks.json', 'signing-key.pem']);
});

test('a deleted jwks.json is rewritten from the private key', async () => {
  const signer = await ensureDevSigner(stateDir, notProduction);
  const original = await readFile(signer.jwksFile, 'utf8');
  await rm(signer.jwksFile);
  await ensureDevSigner(stateDir, notProduction);
  expect(await readFile(signer.jwksFile, 'utf8')).toBe(original);
});

test('its tokens verify against the dev key set and get what the dev policy grants', async () => {
  const signer = await ensureDevSigner(stateDir, notProduction);
  const verifier = createTokenVerifier({ issuers: [devTrustedIssuer(signer)] });
  const policy = await AccessPolicy.load(join(__dirname, '..', '..', 'config', 'dev-policy.json'));

  const token = await signer.sign('cert-worker-1', 600);
  const principal = await verifier.verify(token);
  expect(principal).toMatchObject({ issuer: 'provsec-dev', subject: 'cert-worker-1' });
  expect(policy.can(principal, 'provision-secret:read', 'fleet-1')).toBe(true);
  expect(policy.can(principal, 'device-groups:write', 'fleet-1')).toBe(false);

  const claims = decodeJwt(token);
  expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(600);
  expect(claims.aud).toBe('provsec');
  expect(typeof claims.jti).toBe('string');
  expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', kid: signer.keyId, typ: 'JWT' });
});

test('a custom audience is signed into the token', async () => {
  const signer = await ensureDevSigner(stateDir, { production: false, audience: 'provsec-local' });
  expect(decodeJwt(await signer.sign('x', 60)).aud).toBe('provsec-local');
});

test('refused when NODE_ENV=production, before touching the disk', async () => {
  await expect(ensureDevSigner(stateDir, { production: true })).rejects.toThrow(DevModeRefusedError);
  await expect(ensureDevSigner(stateDir, { production: true })).rejects.toThrow(/refused when NODE_ENV=production/);
  expect(await readdir(stateDir)).toEqual([]);
});

test('a ttl beyond the maximum lifetime, zero, or fractional is refused', async () => {
  const signer = await ensureDevSigner(stateDir, notProduction);
  await expect(signer.sign('x', 3601)).rejects.toThrow('ttl must be a whole number of seconds from 1 to 3600');
  await expect(signer.sign('x', 0)).rejects.toThrow(RangeError);
  await expect(signer.sign('x', 1.5)).rejects.toThrow(RangeError);
  await expect(signer.sign('x', 3600)).resolves.toEqual(expect.any(String));
  const shorter = await ensureDevSigner(stateDir, { production: false, maxTokenLifetimeSeconds: 300 });
  await expect(shorter.sign('x', 301)).rejects.toThrow('from 1 to 300');
});

test('an empty or control-character subject is refused', async () => {
  const signer = await ensureDevSigner(stateDir, notProduction);
  await expect(signer.sign('', 60)).rejects.toThrow(RangeError);
  await expect(signer.sign('a\nb', 60)).rejects.toThrow(RangeError);
});

test('a private key file others can read is refused, like ssh does', async () => {
  await ensureDevSigner(stateDir, notProduction);
  const keyFile = join(stateDir, 'dev-auth', 'signing-key.pem');
  await chmod(keyFile, 0o644);
  await expect(ensureDevSigner(stateDir, notProduction)).rejects.toThrow(AuthConfigError);
  await expect(ensureDevSigner(stateDir, notProduction)).rejects.toThrow(
    /readable by others \(mode 644\); run chmod 600/,
  );
});

test('a private key path that is a symlink is refused', async () => {
  const elsewhere = join(stateDir, 'elsewhere.pem');
  await writeFile(elsewhere, 'not a key', { mode: 0o600 });
  await mkdir(join(stateDir, 'dev-auth'), { mode: 0o700 });
  await symlink(elsewhere, join(stateDir, 'dev-auth', 'signing-key.pem'));
  await expect(ensureDevSigner(stateDir, notProduction)).rejects.toThrow(/is not a regular file/);
  expect((await lstat(join(stateDir, 'dev-auth', 'signing-key.pem'))).isSymbolicLink()).toBe(true);
});

test('a corrupt private key file is refused with a way out', async () => {
  await mkdir(join(stateDir, 'dev-auth'), { mode: 0o700 });
  await writeFile(join(stateDir, 'dev-auth', 'signing-key.pem'), 'garbage', { mode: 0o600 });
  await expect(ensureDevSigner(stateDir, notProduction)).rejects.toThrow(/cannot be parsed; delete the folder/);
});
