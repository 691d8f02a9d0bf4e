import { Writable } from 'node:stream';
import { createLogger } from '../../src/log/logger';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { lines, stream };
}

describe('logger redaction', () => {
  const SECRET = 'prov-secret-4b1d9c0e7a';
  test('authorization headers and fields named secret/key/token/password come out redacted', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ level: 'info' }, stream);
    logger.info(
      {
        req: { headers: { authorization: `Bearer ${SECRET}` } },
        provisionSecret: SECRET,
        key: SECRET,
        nested: {
          clientSecret: SECRET,
          apiKey: SECRET,
          deeper: { dbPassword: SECRET, refreshToken: SECRET, bytes: Buffer.from(SECRET) },
        },
        token: SECRET,
        password: SECRET,
        kekId: 'kek_0123456789abcdef0123456789abcdef',
      },
      'something happened',
    );
    const output = lines.join('');
    expect(output).not.toContain(SECRET);
    expect(output).toContain('[REDACTED]');
    // KEK ids are fingerprints, not key material, and stay readable for operators.
    expect(output).toContain('kek_0123456789abcdef0123456789abcdef');
  });

  test('child loggers keep the redaction', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ level: 'info' }, stream).child({ requestId: 'r-1' });
    logger.warn({ secret: SECRET, vaultToken: SECRET }, 'child');
    expect(lines.join('')).not.toContain(SECRET);
    expect(lines.join('')).toContain('r-1');
  });
});
