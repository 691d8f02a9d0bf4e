/** scripts/token.ts: in process for each outcome, and once compiled and run as `node token.js` to pin its stdout. */
// Typed asymmetric matchers (@types/jest gives them as `any`).
import { expect } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runTokenCommand } from '../../scripts/token';
import { createTokenVerifier } from '../../src/auth/token-verifier';

const run = promisify(execFile);
const REPO_ROOT = join(__dirname, '..', '..');
const COMPACT_JWS_LINE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/;

let stateDir: string;
const devEnv = () => ({ NODE_ENV: 'development', PROVSEC_STATE_DIR: stateDir });

beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'provsec-token-'));
});

afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

async function runInProcess(argv: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const code = await runTokenCommand(argv, env, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

test('prints one token and nothing else; the token verifies against the dev key set', async () => {
  const result = await runInProcess(['--sub', 'management-api', '--ttl', '600'], devEnv());
  expect(result).toEqual({ code: 0, stdout: expect.stringMatching(COMPACT_JWS_LINE), stderr: '' });
  const verifier = createTokenVerifier({
    issuers: [{ issuer: 'provsec-dev', jwks: { kind: 'file', path: join(stateDir, 'dev-auth', 'jwks.json') } }],
  });
  await expect(verifier.verify(result.stdout.trim())).resolves.toMatchObject({
    issuer: 'provsec-dev',
    subject: 'management-api',
  });
});

test('refused with one line and exit 1 when NODE_ENV=production, creating nothing', async () => {
  const result = await runInProcess(['--sub', 'x'], { ...devEnv(), NODE_ENV: 'production' });
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(/^provsec token: npm run token is refused when NODE_ENV=production[^\n]*\n$/);
  expect(await readdir(stateDir)).toEqual([]);
});

test('a ttl above the 3600 s maximum is refused with exit 1', async () => {
  const result = await runInProcess(['--sub', 'x', '--ttl', '7200'], devEnv());
  expect(result).toEqual({
    code: 1,
    stdout: '',
    stderr: 'provsec token: ttl must be a whole number of seconds from 1 to 3600\n',
  });
});

test('the maximum follows AUTH_MAX_TOKEN_LIFETIME', async () => {
  const result = await runInProcess(['--sub', 'x', '--ttl', '900'], { ...devEnv(), AUTH_MAX_TOKEN_LIFETIME: '600' });
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('from 1 to 600');
});

test.each([
  ['no --sub', ['--ttl', '60']],
  ['an empty --sub', ['--sub', '']],
  ['a non-numeric --ttl', ['--sub', 'x', '--ttl', '10m']],
  ['an unknown option', ['--sub', 'x', '--admin']],
  ['a positional argument', ['x']],
])('%s is a usage error (exit 2, nothing on stdout)', async (_name, argv) => {
  const result = await runInProcess(argv, devEnv());
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr).toContain('usage: npm run token -- --sub NAME');
});

test('compiled and run with node, stdout is exactly one token line', async () => {
  // Transpile only the script and what it imports (types are checked by tsc --noEmit elsewhere), so
  // others' work in progress cannot break this test and it stays fast.
  const outDir = join(REPO_ROOT, 'node_modules', '.cache', `provsec-token-test-${process.pid}`);
  try {
    await run(
      process.execPath,
      [
        require.resolve('typescript/bin/tsc'),
        '--noCheck',
        '--outDir',
        outDir,
        '--rootDir',
        REPO_ROOT,
        '--module',
        'node16',
        '--moduleResolution',
        'node16',
        '--target',
        'ES2022',
        '--strict',
        '--esModuleInterop',
        '--resolveJsonModule',
        '--skipLibCheck',
        '--types',
        'node',
        join(REPO_ROOT, 'scripts', 'token.ts'),
      ],
      { cwd: REPO_ROOT },
    );
    const script = join(outDir, 'scripts', 'token.js');
    const { stdout, stderr } = await run(process.execPath, [script, '--sub', 'cert-worker-1', '--ttl', '600'], {
      env: { PATH: process.env.PATH ?? '', ...devEnv() },
    });
    expect(stdout).toMatch(COMPACT_JWS_LINE);
    expect(stderr).toBe('');
    const refused = await run(process.execPath, [script, '--sub', 'x'], {
      env: { PATH: process.env.PATH ?? '', ...devEnv(), NODE_ENV: 'production' },
    }).then(
      () => undefined,
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused?.stderr.trim().split('\n')).toHaveLength(1);
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}, 60_000);
