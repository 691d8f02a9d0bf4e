/**
 * A throw-away PKI made at test time with node's crypto alone (CI has Node and npm only, no
 * openssl): a CA and the server certificates it signs, as PEM. The X.509 v3 DER is assembled here
 * (RFC 5280 4.1) and signed with ECDSA P-256 / SHA-256, so a test can ask for any serial and any
 * validity window, expired ones included. Nothing it makes is ever written to the repository.
 */
import { createHash, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// --- DER (X.690), only the types a certificate needs -------------------------------------------
function tlv(tag: number, content: Buffer): Buffer {
  const length = content.length;
  let header: Buffer;
  if (length < 0x80) header = Buffer.from([tag, length]);
  else {
    const lengthBytes = Buffer.from(length.toString(16).padStart(length > 0xff ? 4 : 2, '0'), 'hex');
    header = Buffer.concat([Buffer.from([tag, 0x80 | lengthBytes.length]), lengthBytes]);
  }
  return Buffer.concat([header, content]);
}
const sequence = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const explicit = (tagNumber: number, item: Buffer) => tlv(0xa0 + tagNumber, item);
const octetString = (bytes: Buffer) => tlv(0x04, bytes);
const bitString = (bytes: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
const boolean = (value: boolean) => tlv(0x01, Buffer.from([value ? 0xff : 0]));
const utf8 = (text: string) => tlv(0x0c, Buffer.from(text, 'utf8'));

function integer(value: bigint): Buffer {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] as number) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

function oid(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let value = arc >>> 7; value > 0; value >>>= 7) base128.unshift((value & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime for 1950-2049 (RFC 5280 4.1.2.5.1), GeneralizedTime otherwise. */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const name = (commonName: string) => sequence(set(sequence(oid('2.5.4.3'), utf8(commonName))));
const extension = (id: string, critical: boolean, value: Buffer) =>
  sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
const ECDSA_WITH_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));

// --- certificates -------------------------------------------------------------------------------
export interface Issued {
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  readonly privateKey: KeyObject;
  /** Upper-case hex, as X509Certificate#serialNumber and the service's logs print it. */
  readonly serialNumber: string;
  readonly commonName: string;
}

export interface IssueOptions {
  readonly commonName?: string;
  readonly serial?: bigint;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** DNS names in the subjectAltName; 127.0.0.1 and ::1 are always there. Default ['localhost']. */
  readonly dnsNames?: readonly string[];
  /** Sign with this key pair instead of a fresh one (to build a mismatched pair, for instance). */
  readonly keyPair?: { publicKey: KeyObject; privateKey: KeyObject };
}

const HOUR_MS = 3_600_000;
let nextSerial = BigInt(Date.now()) * 1000n;

const pem = (label: string, der: Buffer) =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;

function keyId(publicKey: KeyObject): Buffer {
  return createHash('sha1')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest();
}

function buildCertificate(options: {
  subject: string;
  issuer: string;
  serial: bigint;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  issuerPublicKey: KeyObject;
  signingKey: KeyObject;
  extensions: Buffer[];
}): Buffer {
  const tbs = sequence(
    explicit(0, integer(2n)),
    integer(options.serial),
    ECDSA_WITH_SHA256,
    name(options.issuer),
    sequence(time(options.notBefore), time(options.notAfter)),
    name(options.subject),
    options.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      sequence(
        ...options.extensions,
        extension('2.5.29.14', false, octetString(keyId(options.publicKey))),
        extension('2.5.29.35', false, sequence(tlv(0x80, keyId(options.issuerPublicKey)))),
      ),
    ),
  );
  return sequence(tbs, ECDSA_WITH_SHA256, bitString(sign('sha256', tbs, options.signingKey)));
}

export class TestCertificateAuthority {
  readonly certificatePem: string;
  private readonly keyPair = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  constructor(readonly commonName = `provsec test CA ${Date.now()}`) {
    const now = Date.now();
    this.certificatePem = pem(
      'CERTIFICATE',
      buildCertificate({
        subject: commonName,
        issuer: commonName,
        serial: (nextSerial += 1n),
        notBefore: new Date(now - HOUR_MS),
        notAfter: new Date(now + 48 * HOUR_MS),
        publicKey: this.keyPair.publicKey,
        issuerPublicKey: this.keyPair.publicKey,
        signingKey: this.keyPair.privateKey,
        extensions: [
          extension('2.5.29.19', true, sequence(boolean(true))),
          // keyCertSign | cRLSign
          extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x01, 0x06]))),
        ],
      }),
    );
  }

  /** A server certificate for localhost (and 127.0.0.1, ::1), by default valid from an hour ago for a day. */
  issue(options: IssueOptions = {}): Issued {
    const keyPair = options.keyPair ?? generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const serial = options.serial ?? (nextSerial += 1n);
    const commonName = options.commonName ?? 'localhost';
    const now = Date.now();
    const altNames = [
      ...(options.dnsNames ?? ['localhost']).map((dns) => tlv(0x82, Buffer.from(dns, 'ascii'))),
      tlv(0x87, Buffer.from([127, 0, 0, 1])),
      tlv(0x87, Buffer.concat([Buffer.alloc(15), Buffer.from([1])])),
    ];
    const der = buildCertificate({
      subject: commonName,
      issuer: this.commonName,
      serial,
      notBefore: options.notBefore ?? new Date(now - HOUR_MS),
      notAfter: options.notAfter ?? new Date(now + 24 * HOUR_MS),
      publicKey: keyPair.publicKey,
      issuerPublicKey: this.keyPair.publicKey,
      signingKey: this.keyPair.privateKey,
      extensions: [
        extension('2.5.29.19', true, sequence()),
        // digitalSignature
        extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x07, 0x80]))),
        // serverAuth
        extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.1'))),
        extension('2.5.29.17', false, sequence(...altNames)),
      ],
    });
    const certificatePem = pem('CERTIFICATE', der);
    return {
      certificatePem,
      privateKeyPem: keyPair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      privateKey: keyPair.privateKey,
      serialNumber: new X509Certificate(certificatePem).serialNumber.toUpperCase(),
      commonName,
    };
  }
}

/** A directory of certificate files, written the two ways a renewal arrives. */
export class CertificateFiles {
  readonly directory = mkdtempSync(join(tmpdir(), 'provsec-tls-'));
  readonly certFile = join(this.directory, 'tls.crt');
  readonly keyFile = join(this.directory, 'tls.key');
  readonly caFile = join(this.directory, 'ca.crt');

  constructor(ca: TestCertificateAuthority) {
    writeFileSync(this.caFile, ca.certificatePem);
  }

  /** Temp file + rename over the target, per file (the Vault Agent, cert-manager's atomic writer). */
  replaceByRename(issued: Issued): void {
    this.renameInto(this.keyFile, issued.privateKeyPem);
    this.renameInto(this.certFile, issued.certificatePem);
  }

  /** Truncate and rewrite the same inodes (an editor, `cp` over the file). */
  rewriteInPlace(issued: Issued): void {
    writeFileSync(this.keyFile, issued.privateKeyPem);
    writeFileSync(this.certFile, issued.certificatePem);
  }

  private renameInto(path: string, content: string): void {
    const temporary = `${path}.tmp-${process.pid}-${Date.now()}`;
    writeFileSync(temporary, content, { mode: 0o440 });
    renameSync(temporary, path);
  }
}
