/**
 * Reads a serving certificate and its key from PEM text and decides whether they may serve.
 * Invariants: a pair is returned only when every PEM block is complete, the first certificate is
 * the one the key signs for (X509Certificate#checkPrivateKey), and `now` lies inside its validity;
 * no error message or field of an error carries key bytes (reasons are fixed codes).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

export const CERTIFICATE_PAIR_FAILURE_REASONS = [
  'unreadable',
  'incomplete-pem',
  'no-certificate',
  'no-private-key',
  'invalid-certificate',
  'invalid-private-key',
  'key-mismatch',
  'expired',
  'not-yet-valid',
] as const;
export type CertificatePairFailureReason = (typeof CERTIFICATE_PAIR_FAILURE_REASONS)[number];

const FAILURE_MESSAGES: Record<CertificatePairFailureReason, string> = {
  unreadable: 'the certificate or key file cannot be read',
  'incomplete-pem': 'a PEM block is cut off (a half-written file?)',
  'no-certificate': 'the certificate file holds no CERTIFICATE block',
  'no-private-key': 'the key file holds no unencrypted PRIVATE KEY block',
  'invalid-certificate': 'a CERTIFICATE block does not parse',
  'invalid-private-key': 'the PRIVATE KEY block does not parse',
  'key-mismatch': 'the private key does not belong to the first certificate',
  expired: 'the certificate has expired',
  'not-yet-valid': 'the certificate is not valid yet',
};

export class CertificatePairError extends Error {
  constructor(readonly reason: CertificatePairFailureReason) {
    super(FAILURE_MESSAGES[reason]);
    this.name = 'CertificatePairError';
  }
}

export interface CertificatePair {
  /** Leaf first, then the chain, as sent in the handshake. */
  readonly certificateChainPem: string;
  readonly privateKeyPem: string;
  /** Upper-case hex, as `openssl x509 -serial` prints it. */
  readonly serialNumber: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

interface PemBlock {
  readonly label: string;
  readonly text: string;
}

const BEGIN_LINE = /^-----BEGIN ([A-Z0-9 ]+)-----\s*$/;
const END_LINE = /^-----END ([A-Z0-9 ]+)-----\s*$/;

/** Every block in `text`; a BEGIN without its END (a file cut off mid-write) is an error, not skipped. */
export function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let open: { label: string; lines: string[] } | undefined;
  for (const line of text.split(/\r?\n/)) {
    const begin = BEGIN_LINE.exec(line);
    const end = END_LINE.exec(line);
    if (open === undefined) {
      if (begin) open = { label: begin[1] as string, lines: [line] };
      else if (end) throw new CertificatePairError('incomplete-pem');
      continue;
    }
    if (begin) throw new CertificatePairError('incomplete-pem');
    open.lines.push(line);
    if (end) {
      if (end[1] !== open.label) throw new CertificatePairError('incomplete-pem');
      blocks.push({ label: open.label, text: `${open.lines.join('\n')}\n` });
      open = undefined;
    }
  }
  if (open !== undefined) throw new CertificatePairError('incomplete-pem');
  return blocks;
}

/**
 * The pair in `certificateText` (certificate, then its chain) and `keyText`; both may be the same
 * combined file, as the Vault Agent's pkiCert template renders it (docs/deploy.md).
 */
export function parseCertificatePair(certificateText: string, keyText: string, now: Date): CertificatePair {
  const certificateBlocks = pemBlocks(certificateText).filter((block) => block.label === 'CERTIFICATE');
  // An encrypted key would need a passphrase in the environment: refused, it is just another secret to leak.
  const keyBlocks = pemBlocks(keyText).filter((block) => /^(RSA |EC )?PRIVATE KEY$/.test(block.label));
  const leafBlock = certificateBlocks[0];
  if (leafBlock === undefined) throw new CertificatePairError('no-certificate');
  const keyBlock = keyBlocks[0];
  if (keyBlock === undefined) throw new CertificatePairError('no-private-key');

  const certificates = certificateBlocks.map((block) => parseCertificate(block.text));
  const leaf = certificates[0] as X509Certificate;
  const privateKey = parsePrivateKey(keyBlock.text);
  // Serving a certificate whose key we do not hold fails every handshake: keep the old pair instead.
  if (!leaf.checkPrivateKey(privateKey)) throw new CertificatePairError('key-mismatch');
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  // Clients refuse an expired or future certificate; swapping one in would cut every new connection.
  if (now.getTime() >= notAfter.getTime()) throw new CertificatePairError('expired');
  if (now.getTime() < notBefore.getTime()) throw new CertificatePairError('not-yet-valid');

  return {
    certificateChainPem: certificateBlocks.map((block) => block.text).join(''),
    privateKeyPem: keyBlock.text,
    serialNumber: leaf.serialNumber.toUpperCase(),
    subject: leaf.subject,
    notBefore,
    notAfter,
  };
}

function parseCertificate(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new CertificatePairError('invalid-certificate');
  }
}

function parsePrivateKey(pem: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    // OpenSSL's message may quote the input; it is replaced by the fixed reason.
    throw new CertificatePairError('invalid-private-key');
  }
}
