/**
 * Checks a 200 answer against the request before trusting it. With a recipient key: the answer
 * must be a JWE (plaintext JSON is a downgrade), its protected header must name our group, a
 * version, our kid and the expected algorithms BEFORE we decrypt, and the decrypted JSON must say
 * the same. Without a key: the JSON must be for our group. Anything else is exit code 6.
 */
import { compactDecrypt, decodeProtectedHeader, type CompactJWEHeaderParameters } from 'jose';
import {
  GROUP_HEADER_PARAMETER,
  JSON_MEDIA_TYPE,
  JWE_MEDIA_TYPE,
  SECRET_JWE_ALG,
  SECRET_JWE_ENC,
  VERSION_HEADER_PARAMETER,
  type ProvisionSecretAnswer,
} from '../protocol/secret-answer';
import { badAnswer, usageError } from './errors';
import type { RecipientPrivateKey } from './recipient-key-file';
import type { HttpAnswer } from './transport';

export async function openAnswer(
  answer: HttpAnswer,
  groupId: string,
  key: RecipientPrivateKey | undefined,
): Promise<ProvisionSecretAnswer> {
  const mediaType = (answer.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (key === undefined) {
    if (mediaType === JWE_MEDIA_TYPE)
      throw usageError(
        'the service answered with a JWE (a recipient key is registered for this identity), but no private key is configured: set PROVSEC_RECIPIENT_KEY_FILE or --recipient-key-file',
      );
    if (mediaType !== JSON_MEDIA_TYPE) throw badAnswer(`unexpected answer type ${String(mediaType)}`);
    return checkedSecret(parseJson(answer.body), groupId, undefined);
  }
  // A key is configured, so the service must encrypt: a plaintext answer means someone in the path
  // (or a policy change) removed the protection we rely on.
  if (mediaType !== JWE_MEDIA_TYPE)
    throw badAnswer(
      `refused a ${String(mediaType)} answer: a recipient key is configured, so only an encrypted (${JWE_MEDIA_TYPE}) answer is accepted (downgrade)`,
    );
  const jwe = answer.body.trim();
  const header = protectedHeaderOf(jwe);
  checkHeader(header, groupId, key);
  let plaintext: Uint8Array;
  try {
    ({ plaintext } = await compactDecrypt(jwe, key.privateKey, {
      keyManagementAlgorithms: [SECRET_JWE_ALG],
      contentEncryptionAlgorithms: [SECRET_JWE_ENC],
    }));
  } catch {
    throw badAnswer(`the encrypted answer does not decrypt with the configured key (kid ${String(header.kid)})`);
  }
  try {
    return checkedSecret(parseJson(Buffer.from(plaintext).toString('utf8')), groupId, header[VERSION_HEADER_PARAMETER]);
  } finally {
    plaintext.fill(0);
  }
}

function protectedHeaderOf(jwe: string): CompactJWEHeaderParameters & Record<string, unknown> {
  if (jwe.split('.').length !== 5) throw badAnswer('the answer is not a compact JWE');
  try {
    return decodeProtectedHeader(jwe) as CompactJWEHeaderParameters & Record<string, unknown>;
  } catch {
    throw badAnswer('the answer is not a compact JWE (unreadable protected header)');
  }
}

/** Before decrypting: is this the answer to our request, for our key, with the algorithms we allow? */
function checkHeader(header: Record<string, unknown>, groupId: string, key: RecipientPrivateKey): void {
  if (header.alg !== SECRET_JWE_ALG || header.enc !== SECRET_JWE_ENC)
    throw badAnswer(
      `the answer uses alg ${String(header.alg)} enc ${String(header.enc)}, not ${SECRET_JWE_ALG} ${SECRET_JWE_ENC}`,
    );
  if (header[GROUP_HEADER_PARAMETER] !== groupId)
    throw badAnswer(
      `the answer is for another group (${JSON.stringify(header[GROUP_HEADER_PARAMETER])}), not ${groupId}`,
    );
  const version = header[VERSION_HEADER_PARAMETER];
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)
    throw badAnswer(`the answer's ${VERSION_HEADER_PARAMETER} header is missing or not a positive integer`);
  if (typeof header.kid !== 'string') throw badAnswer('the answer names no key (kid)');
  if (key.kid !== undefined && header.kid !== key.kid)
    throw badAnswer(`the answer is encrypted to kid ${JSON.stringify(header.kid)}, not to this key (${key.kid})`);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badAnswer('the answer is not valid JSON');
  }
}

/** After decrypting (or for JSON): the body names our group, and the header's version if any. */
function checkedSecret(body: unknown, groupId: string, headerVersion: unknown): ProvisionSecretAnswer {
  const candidate = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof candidate.provisionSecret !== 'string' || typeof candidate.secretVersion !== 'number')
    throw badAnswer('the answer does not hold a provision secret');
  if (candidate.id !== groupId)
    throw badAnswer(`the answer is for another group (${JSON.stringify(candidate.id)}), not ${groupId}`);
  if (headerVersion !== undefined && candidate.secretVersion !== headerVersion)
    throw badAnswer('the decrypted version does not match the protected header');
  return { id: groupId, provisionSecret: candidate.provisionSecret, secretVersion: candidate.secretVersion };
}
