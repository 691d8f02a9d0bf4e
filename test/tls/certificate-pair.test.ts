import { generateKeyPairSync } from 'node:crypto';
import { CertificatePairError, parseCertificatePair, pemBlocks } from '../../src/tls/certificate-pair';
import { TestCertificateAuthority } from '../support/test-pki';
import { thrownBy } from '../support/thrown';

const ca = new TestCertificateAuthority();
const HOUR_MS = 3_600_000;
const reasonOf = (run: () => unknown): string => {
  const refused = thrownBy(CertificatePairError, run);
  return refused === undefined ? 'accepted' : refused.reason;
};

describe('parseCertificatePair', () => {
  test('a certificate with its chain and the matching key is accepted, leaf first, with its serial and validity', () => {
    const issued = ca.issue();
    const pair = parseCertificatePair(issued.certificatePem + ca.certificatePem, issued.privateKeyPem, new Date());
    expect(pair.serialNumber).toBe(issued.serialNumber);
    expect(pair.certificateChainPem).toBe(issued.certificatePem + ca.certificatePem);
    expect(pair.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(pair.subject).toBe('CN=localhost');
  });

  test('one combined file (certificate, CA, key: what the pkiCert template renders) serves as both', () => {
    const issued = ca.issue();
    const combined = `${issued.certificatePem}${ca.certificatePem}${issued.privateKeyPem}`;
    const pair = parseCertificatePair(combined, combined, new Date());
    expect(pair.privateKeyPem).toBe(issued.privateKeyPem);
    expect(pair.certificateChainPem).toBe(issued.certificatePem + ca.certificatePem);
  });

  test('a half-written file (cut inside a block) is refused as incomplete, not read as a shorter chain', () => {
    const issued = ca.issue();
    const full = issued.certificatePem + ca.certificatePem;
    const cut = full.slice(0, issued.certificatePem.length + 100);
    expect(reasonOf(() => parseCertificatePair(cut, issued.privateKeyPem, new Date()))).toBe('incomplete-pem');
    expect(reasonOf(() => parseCertificatePair(full, issued.privateKeyPem.slice(0, 60), new Date()))).toBe(
      'incomplete-pem',
    );
    expect(reasonOf(() => parseCertificatePair('', issued.privateKeyPem, new Date()))).toBe('no-certificate');
  });

  test('a key that does not belong to the certificate is refused', () => {
    const issued = ca.issue();
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    expect(reasonOf(() => parseCertificatePair(issued.certificatePem, otherKey, new Date()))).toBe('key-mismatch');
  });

  test('an expired and a not-yet-valid certificate are refused', () => {
    const expired = ca.issue({
      notBefore: new Date(Date.now() - 48 * HOUR_MS),
      notAfter: new Date(Date.now() - HOUR_MS),
    });
    const future = ca.issue({
      notBefore: new Date(Date.now() + HOUR_MS),
      notAfter: new Date(Date.now() + 48 * HOUR_MS),
    });
    expect(reasonOf(() => parseCertificatePair(expired.certificatePem, expired.privateKeyPem, new Date()))).toBe(
      'expired',
    );
    expect(reasonOf(() => parseCertificatePair(future.certificatePem, future.privateKeyPem, new Date()))).toBe(
      'not-yet-valid',
    );
  });

  test('a corrupted certificate body and an encrypted key are refused', () => {
    const issued = ca.issue();
    const lines = issued.certificatePem.split('\n');
    lines[3] = 'A'.repeat(lines[3]!.length);
    expect(reasonOf(() => parseCertificatePair(lines.join('\n'), issued.privateKeyPem, new Date()))).toBe(
      'invalid-certificate',
    );
    const encrypted = issued.privateKey
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' })
      .toString();
    expect(reasonOf(() => parseCertificatePair(issued.certificatePem, encrypted, new Date()))).toBe('no-private-key');
  });

  test('no refusal carries a byte of the key in its message', () => {
    const issued = ca.issue();
    const keyBody = issued.privateKeyPem.split('\n')[1]!;
    const broken = issued.privateKeyPem.replace(keyBody, `${keyBody.slice(0, 10)}!!!${keyBody.slice(13)}`);
    let caught: unknown;
    try {
      parseCertificatePair(issued.certificatePem, broken, new Date());
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CertificatePairError);
    expect(JSON.stringify({ message: (caught as Error).message, ...(caught as object) })).not.toContain(
      keyBody.slice(0, 16),
    );
  });
});

describe('pemBlocks', () => {
  test('text around the blocks is ignored (Vault writes "rsa" and the serial between them)', () => {
    const issued = ca.issue();
    expect(pemBlocks(`rsa\n${issued.certificatePem}\n12:34\n${issued.privateKeyPem}`).map((b) => b.label)).toEqual([
      'CERTIFICATE',
      'PRIVATE KEY',
    ]);
  });

  test('an END line of another label is a broken file', () => {
    expect(() => pemBlocks('-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n')).toThrow(
      CertificatePairError,
    );
  });
});
