/**
 * The dev token signer behind `npm run token`: an Ed25519 key pair made once in
 * `<stateDir>/dev-auth/` and reused, whose public half (jwks.json) the dev configuration trusts.
 * Invariants: refused when NODE_ENV=production; the private key file is mode 0600 in a 0700
 * folder and is refused if anyone else can read it; tokens it signs live at most the verifier's
 * maximum lifetime.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  type KeyObject,
} from 'node:crypto';
import { chmod, link, lstat, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, SignJWT, type JWK } from 'jose';
import { AuthConfigError, DevModeRefusedError } from './errors';
import { DEFAULT_AUDIENCE, DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, type TrustedIssuerOptions } from './token-verifier';
import { needs } from '../crypto/needs';

export const DEV_ISSUER = 'provsec-dev';
const DEV_AUTH_DIR = 'dev-auth';
const PRIVATE_KEY_FILE = 'signing-key.pem';
const JWKS_FILE = 'jwks.json';

export interface DevSignerOptions {
  /** NODE_ENV=production: the signer refuses to exist. Required so no caller can forget it. */
  readonly production: boolean;
  /** The `aud` of signed tokens; must be what the verifier expects. Default `provsec`. */
  readonly audience?: string;
  /** Upper bound for a token's ttl. Default 3600 (the verifier's default maximum lifetime). */
  readonly maxTokenLifetimeSeconds?: number;
}

export interface DevSigner {
  readonly issuer: string;
  /** Public key set to trust (AUTH_JWKS_FILE form). */
  readonly jwksFile: string;
  readonly keyId: string;
  /** A token for `subject` valid for `ttlSeconds` from now. */
  sign(subject: string, ttlSeconds: number): Promise<string>;
}

export async function ensureDevSigner(stateDir: string, options: DevSignerOptions): Promise<DevSigner> {
  needs(!options.production, () => new DevModeRefusedError('the dev token signer'));
  const audience = options.audience ?? DEFAULT_AUDIENCE;
  const maxTokenLifetimeSeconds = options.maxTokenLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS;
  const directory = join(stateDir, DEV_AUTH_DIR);
  await mkdir(directory, { recursive: true, mode: 0o700 });

  const privateKey = await loadOrCreatePrivateKey(join(directory, PRIVATE_KEY_FILE));
  const publicJwk = await exportJWK(createPublicKey(privateKey));
  const keyId = await calculateJwkThumbprint(publicJwk);
  const jwksFile = join(directory, JWKS_FILE);
  await writeIfChanged(
    jwksFile,
    `${JSON.stringify({ keys: [{ ...publicJwk, kid: keyId, alg: 'EdDSA', use: 'sig' } satisfies JWK] }, null, 2)}\n`,
  );

  return {
    issuer: DEV_ISSUER,
    jwksFile,
    keyId,
    async sign(subject: string, ttlSeconds: number): Promise<string> {
      needs(
        typeof subject === 'string' && subject.length > 0 && subject.length <= 256 && !/\p{Cc}/u.test(subject),
        () => new RangeError('subject must be 1..256 printable characters'),
      );
      // The verifier refuses longer-lived tokens anyway; refusing here gives the developer the reason.
      needs(
        Number.isInteger(ttlSeconds) && ttlSeconds >= 1 && ttlSeconds <= maxTokenLifetimeSeconds,
        () => new RangeError(`ttl must be a whole number of seconds from 1 to ${maxTokenLifetimeSeconds}`),
      );
      const issuedAt = Math.floor(Date.now() / 1000);
      return new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', kid: keyId, typ: 'JWT' })
        .setIssuer(DEV_ISSUER)
        .setAudience(audience)
        .setSubject(subject)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + ttlSeconds)
        .setJti(randomUUID())
        .sign(privateKey);
    },
  };
}

/** The trusted-issuer entry that makes a verifier accept this signer's tokens (dev configuration). */
export function devTrustedIssuer(
  signer: Pick<DevSigner, 'issuer' | 'jwksFile'>,
  audience: string = DEFAULT_AUDIENCE,
): TrustedIssuerOptions {
  return { issuer: signer.issuer, audience, jwks: { kind: 'file', path: signer.jwksFile } };
}

async function loadOrCreatePrivateKey(path: string): Promise<KeyObject> {
  const existing = await readPrivateKeyIfPresent(path);
  if (existing) return existing;
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' });
  // Write aside, then link into place: link fails if another process got there first, and a reader never sees half a file.
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temporary, pem, { mode: 0o600, flag: 'wx' });
  try {
    await chmod(temporary, 0o600); // in case the umask took bits away from, not added to, 0600
    await link(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await unlink(temporary);
  }
  const created = await readPrivateKeyIfPresent(path);
  if (!created) throw new AuthConfigError(`dev signing key ${path} vanished while being created`);
  return created;
}

async function readPrivateKeyIfPresent(path: string): Promise<KeyObject | undefined> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  // A symlink could point the signer at a key someone else controls.
  needs(stats.isFile(), () => new AuthConfigError(`dev signing key ${path} is not a regular file`));
  // Like ssh: a key others can read is no longer only ours to sign with.
  needs(
    (stats.mode & 0o077) === 0,
    () =>
      new AuthConfigError(
        `dev signing key ${path} is readable by others (mode ${(stats.mode & 0o777).toString(8)}); run chmod 600 on it`,
      ),
  );
  try {
    const key = createPrivateKey(await readFile(path));
    needs(
      key.asymmetricKeyType === 'ed25519',
      () => new AuthConfigError(`dev signing key ${path} is not an Ed25519 key`),
    );
    return key;
  } catch (error) {
    if (error instanceof AuthConfigError) throw error;
    throw new AuthConfigError(`dev signing key ${path} cannot be parsed; delete the folder to make a new one`);
  }
}

/** Rewrites the public key set only if it differs (atomically), so it always matches the private key. */
async function writeIfChanged(path: string, content: string): Promise<void> {
  const current = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (current === content) return;
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temporary, content, { mode: 0o644, flag: 'wx' });
  await rename(temporary, path);
}
