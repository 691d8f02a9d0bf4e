import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { APP_ROOT } from '../src/app-root';
import { createTestDatabase } from './support/test-database';

const MAIN = join(APP_ROOT, 'dist', 'src', 'main.js');

function run(env: Record<string, string>): {
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  kill: (signal: NodeJS.Signals) => void;
  stdout: () => string;
} {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return { done, kill: (signal) => child.kill(signal), stdout: () => stdout };
}

async function waitFor(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the provsec process', () => {
  test('a bad variable stops it with one line naming the variable, a non-zero exit and no stack trace', async () => {
    const { code, stdout, stderr } = await run({ PORT: 'eighty' }).done;
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe('provsec: configuration error: PORT: must be a whole number between 0 and 65535\n');
  });

  test('NODE_ENV=production without DATABASE_URL refuses the embedded database', async () => {
    const { code, stderr } = await run({ NODE_ENV: 'production' }).done;
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/DATABASE_URL: is required when NODE_ENV=production/);
  });

  test('SIGTERM drains and exits 0', async () => {
    const databaseUrl = await createTestDatabase('main');
    const child = run({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', DATABASE_URL: databaseUrl });
    await waitFor(() => child.stdout().includes('provsec listening'), 15_000);
    child.kill('SIGTERM');
    const { code, stdout } = await child.done;
    expect(code).toBe(0);
    expect(stdout).toMatch(/"drained":true/);
  }, 30_000);
});
