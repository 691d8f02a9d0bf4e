import { generateKeyPairSync } from 'node:crypto';
import { compactDecrypt, decodeProtectedHeader } from 'jose';
import { encryptForRecipient, InvalidRecipientKeyError } from '../../src/crypto';

const binding = { groupId: 'fleet-1', secretVersion: 3 };

test('the JWE is ECDH-ES+A256KW / A256GCM with kid, group and version protected, and opens with the private key', async () => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwe = await encryptForRecipient(Buffer.from('{"a":1}'), { kid: 'w1', publicKey }, binding);
  expect(decodeProtectedHeader(jwe)).toMatchObject({
    alg: 'ECDH-ES+A256KW',
    enc: 'A256GCM',
    kid: 'w1',
    'provsec.group': 'fleet-1',
    'provsec.ver': 3,
  });
  const { plaintext } = await compactDecrypt(jwe, privateKey);
  expect(Buffer.from(plaintext).toString()).toBe('{"a":1}');
});

test('a recipient key must be an EC P-256 or X25519 public key', async () => {
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  await expect(encryptForRecipient(Buffer.from('x'), { kid: 'k', publicKey: p384.publicKey }, binding)).rejects.toThrow(
    InvalidRecipientKeyError,
  );
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await expect(
    encryptForRecipient(Buffer.from('x'), { kid: 'k', publicKey: p256.privateKey }, binding),
  ).rejects.toThrow(InvalidRecipientKeyError);
});
