/**
 * `provsec-secret keygen`: a new P-256 key pair for a worker. The private JWK goes to a new file
 * (mode 0600, never over an existing one); the public JWK is what the operator pastes into the
 * policy as the rule's recipientKey.
 */
import { open } from 'node:fs/promises';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { SECRET_JWE_ALG } from '../protocol/secret-answer';
import { usageError } from './errors';

const KID_PATTERN = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** Writes the private JWK to `outputPath` and returns the public JWK. */
export async function generateRecipientKey(kid: string, outputPath: string): Promise<JWK> {
  if (!KID_PATTERN.test(kid)) throw usageError('--kid must be 1-128 characters of A-Z a-z 0-9 . _ : @ / + = -');
  const { privateKey, publicKey } = await generateKeyPair(SECRET_JWE_ALG, { crv: 'P-256', extractable: true });
  const members = { kid, alg: SECRET_JWE_ALG, use: 'enc' };
  const privateJwk = { ...(await exportJWK(privateKey)), ...members };
  let file;
  try {
    // 'wx': fail if the file exists (a key must never be silently replaced); 0600 from the start.
    file = await open(outputPath, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw usageError(
      code === 'EEXIST'
        ? `${outputPath} already exists; keygen never overwrites a key (choose another path)`
        : `cannot create ${outputPath} (${code ?? 'error'})`,
    );
  }
  try {
    await file.writeFile(`${JSON.stringify(privateJwk)}\n`);
  } finally {
    await file.close();
  }
  return { ...(await exportJWK(publicKey)), ...members };
}
