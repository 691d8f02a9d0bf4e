import { request as httpRequest } from 'node:http';
import { listen } from '../../src/http/server';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('graceful close', () => {
  test('an in-flight request finishes; new connections are refused', async () => {
    const server = await listen(
      (_req, res) => {
        setTimeout(() => res.end('finished'), 300);
      },
      { host: '127.0.0.1', port: 0 },
    );
    const inFlight = get(server.port, '/slow');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closing = server.close(5000);
    await expect(get(server.port, '/late')).rejects.toThrow(/ECONNREFUSED/);
    await expect(inFlight).resolves.toEqual({ status: 200, body: 'finished' });
    await expect(closing).resolves.toBe(true);
  });

  test('the drain timeout bounds the wait for a request that never ends', async () => {
    const server = await listen(() => undefined, { host: '127.0.0.1', port: 0 });
    const stuck = get(server.port, '/stuck').then(
      () => 'answered',
      (error: Error) => error.message,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const startedAt = Date.now();
    await expect(server.close(200)).resolves.toBe(false);
    expect(Date.now() - startedAt).toBeLessThan(2000);
    expect(await stuck).toMatch(/socket hang up|ECONNRESET/);
  });
});
