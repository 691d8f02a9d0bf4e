/**
 * What production's DATABASE_URL rule relies on: with sslmode=verify-full, pg 8 (pg-connection-string
 * 2) really verifies the server: the chain against sslrootcert (or the system store) and the host
 * name. The server here is a stand-in that answers Postgres's SSLRequest ('S') and then does a real
 * TLS handshake with a certificate from a CA made at test time; it speaks no SQL, so a connection
 * that passes verification ends when the stand-in hangs up.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { TLSSocket } from 'node:tls';
import { Client } from 'pg';
import { CertificateFiles, TestCertificateAuthority, type Issued } from '../support/test-pki';

const SSL_REQUEST_CODE = 80877103;

function postgresTlsStandIn(issued: Issued): { server: Server; handshakes: number[] } {
  const handshakes: number[] = [];
  const server = createServer((socket) => {
    socket.once('data', (request: Buffer) => {
      if (request.length !== 8 || request.readInt32BE(4) !== SSL_REQUEST_CODE) {
        socket.destroy();
        return;
      }
      socket.write('S');
      const secure = new TLSSocket(socket, { isServer: true, cert: issued.certificatePem, key: issued.privateKeyPem });
      secure.on('secure', () => {
        handshakes.push(Date.now());
        secure.destroy();
      });
      secure.on('error', () => secure.destroy());
    });
  });
  return { server, handshakes };
}

async function connectError(connectionString: string): Promise<NodeJS.ErrnoException> {
  const client = new Client({ connectionString, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  const error = await client.connect().then(
    () => new Error('connected'),
    (reason: unknown) => reason as NodeJS.ErrnoException,
  );
  await client.end().catch(() => undefined);
  return error;
}

describe('pg with sslmode=verify-full', () => {
  const ca = new TestCertificateAuthority();
  const files = new CertificateFiles(ca);
  let standIn: ReturnType<typeof postgresTlsStandIn>;
  let port = 0;

  beforeAll(async () => {
    standIn = postgresTlsStandIn(ca.issue({ dnsNames: ['localhost'] }));
    standIn.server.listen(0, '127.0.0.1');
    await once(standIn.server, 'listening');
    port = (standIn.server.address() as AddressInfo).port;
  });
  afterAll(() => standIn.server.close());

  test('with the CA from sslrootcert and the host in the certificate, the handshake completes', async () => {
    const before = standIn.handshakes.length;
    const error = await connectError(
      `postgres://provsec@localhost:${port}/provsec?sslmode=verify-full&sslrootcert=${files.caFile}`,
    );
    expect(standIn.handshakes.length).toBe(before + 1);
    // The stand-in hangs up after the handshake: a connection error, not a certificate one.
    expect(error.code ?? '').not.toMatch(/CERT|VERIFY|SELF_SIGNED/);
  });

  test('without the CA (system store only), the server certificate is refused before any byte of SQL', async () => {
    const before = standIn.handshakes.length;
    const error = await connectError(`postgres://provsec@localhost:${port}/provsec?sslmode=verify-full`);
    expect(error.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(standIn.handshakes.length).toBe(before);
  });

  test('with the CA but a host name the certificate does not carry, the server is refused', async () => {
    const wrongName = postgresTlsStandIn(ca.issue({ dnsNames: ['db.elsewhere.internal'] }));
    wrongName.server.listen(0, '127.0.0.1');
    await once(wrongName.server, 'listening');
    const wrongPort = (wrongName.server.address() as AddressInfo).port;
    try {
      const error = await connectError(
        `postgres://provsec@localhost:${wrongPort}/provsec?sslmode=verify-full&sslrootcert=${files.caFile}`,
      );
      expect(error.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      wrongName.server.close();
    }
  });
});
