/** recipientKey on a policy rule: only a public EC P-256 / X25519 JWK with a kid, only on a rule that reads secrets. */
import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { AccessPolicy } from '../../src/auth/access-policy';
import { PolicyError } from '../../src/auth/errors';
import type { Principal } from '../../src/auth/principal';

const ISSUER = 'https://issuer.test';
const who = (subject: string): Principal => ({ issuer: ISSUER, subject, expiresAt: new Date(Date.now() + 60_000) });

function p256Jwk(kid = 'worker-1'): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid };
}
const publicOf = ({ d: _d, ...rest }: Record<string, unknown>) => rest;

const readRule = (recipientKey: unknown, extra: Record<string, unknown> = {}) => ({
  rules: [{ subject: 'worker', permissions: ['provision-secret:read'], recipientKey, ...extra }],
});
const load =
  (json: unknown, requireRecipientKey = false) =>
  () =>
    AccessPolicy.fromJson(json, { requireRecipientKey });

describe('the policy loader refuses', () => {
  test('a private key (a "d" member), saying to register the public key and treat this one as leaked', () => {
    expect(load(readRule(p256Jwk()))).toThrow(
      /rules\[0\]\.recipientKey: is a PRIVATE key \(it has "d"\).*public JWK.*leaked/,
    );
  });

  test('another curve: EC P-384, OKP Ed25519, RSA', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
    expect(load(readRule({ ...p384, kid: 'k' }))).toThrow(
      /recipientKey: must be an EC P-256 or OKP X25519 key, not kty "EC" crv "P-384"/,
    );
    const ed = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
    expect(load(readRule({ ...ed, kid: 'k' }))).toThrow(/not kty "OKP" crv "Ed25519"/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    expect(load(readRule({ ...rsa, kid: 'k' }))).toThrow(/not kty "RSA" crv undefined/);
  });

  test('a key without a kid', () => {
    const { kid: _kid, ...withoutKid } = publicOf(p256Jwk());
    expect(load(readRule(withoutKid))).toThrow(/recipientKey: needs a "kid"/);
  });

  test('a recipientKey on a rule that cannot read secrets', () => {
    const json = {
      rules: [{ subject: 'api', permissions: ['device-groups:read'], recipientKey: publicOf(p256Jwk()) }],
    };
    expect(load(json)).toThrow(/rules\[0\]\.recipientKey: only a rule that grants provision-secret:read/);
  });

  test('a point that is not on the curve, and unknown members', () => {
    const jwk = publicOf(p256Jwk());
    expect(load(readRule({ ...jwk, y: jwk.x }))).toThrow(/is not a valid point on its curve/);
    expect(load(readRule({ ...jwk, x5c: ['abc'] }))).toThrow(/has unknown member x5c/);
  });

  test('one kid naming two different keys', () => {
    const json = {
      rules: [
        { subject: 'a', permissions: ['provision-secret:read'], recipientKey: publicOf(p256Jwk('same')) },
        { subject: 'b', permissions: ['provision-secret:read'], recipientKey: publicOf(p256Jwk('same')) },
      ],
    };
    expect(load(json)).toThrow(/rules\[1\]\.recipientKey: kid "same" already names a different key/);
  });

  test('with AUTH_REQUIRE_RECIPIENT_KEY, a rule that grants provision-secret:read without a key', () => {
    const json = {
      rules: [
        { subject: 'api', permissions: ['device-groups:read'] },
        { subject: 'worker', permissions: ['provision-secret:read'] },
      ],
    };
    expect(load(json, false)).not.toThrow();
    expect(load(json, true)).toThrow(PolicyError);
    expect(load(json, true)).toThrow(
      /rules\[1\]: grants provision-secret:read without a recipientKey, which AUTH_REQUIRE_RECIPIENT_KEY=true forbids/,
    );
  });
});

describe('recipientKeysFor', () => {
  const first = publicOf(p256Jwk('new'));
  const second = publicOf(p256Jwk('old'));
  const x25519 = { ...generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }), kid: 'x' };
  const policy = AccessPolicy.fromJson(
    {
      rules: [
        { subject: 'worker', permissions: ['provision-secret:read'], groups: ['fleet-*'], recipientKey: first },
        { subject: 'worker', permissions: ['provision-secret:read'], recipientKey: second },
        { subject: 'worker', permissions: ['provision-secret:read'] },
        { subject: 'plain', permissions: ['provision-secret:read'] },
        { subject: 'edge', permissions: ['provision-secret:read'], recipientKey: x25519 },
      ],
    },
    { requireRecipientKey: false },
  );

  test('lists the keys of the granting rules in file order; a keyless rule adds none', () => {
    expect(policy.recipientKeysFor(who('worker'), 'fleet-1').map((key) => key.kid)).toEqual(['new', 'old']);
    expect(policy.recipientKeysFor(who('worker'), 'lab-1').map((key) => key.kid)).toEqual(['old']);
    expect(policy.recipientKeysFor(who('plain'), 'fleet-1')).toEqual([]);
    expect(policy.recipientKeysFor(who('edge'), 'fleet-1').map((key) => key.publicKey.asymmetricKeyType)).toEqual([
      'x25519',
    ]);
  });

  test('a thumbprint is the RFC 7638 SHA-256 thumbprint of the public key', async () => {
    // RFC 7638 section 3.1's example key and thumbprint are RSA; for EC, check against jose's own.
    const [key] = policy.recipientKeysFor(who('worker'), 'lab-1');
    expect(await key?.thumbprint()).toBe(await calculateJwkThumbprint(second as never, 'sha256'));
  });
});
