import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createKeySource } from '../../src/keys/create-key-source';
import { DEV_KEK_FILE_NAME } from '../../src/keys/dev-key-source';
import { KeySourceConfigError } from '../../src/keys/errors';
import { captureLogs, expectNoKeyMaterial, newRegistry, withTempDir } from './support/key-test-kit';

let stateDir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir: stateDir, cleanup } = await withTempDir('dev-kek'));
  stateDir = join(stateDir, 'state');
});
afterEach(() => cleanup());

async function startDev() {
  const logs = captureLogs();
  const source = createKeySource(
    { kind: 'dev', stateDir, production: false },
    { logger: logs.logger, registry: newRegistry() },
  );
  await source.start();
  return { source, logs };
}

const devKeyHex = async () =>
  (JSON.parse(await readFile(join(stateDir, DEV_KEK_FILE_NAME), 'utf8')) as { key: string }).key;
const loudWarnings = (logs: ReturnType<typeof captureLogs>) =>
  logs.records().filter((record) => record.level === 40 && String(record.msg).startsWith('DEV KEY SOURCE IN USE'));

describe('dev key source', () => {
  it('creates a random KEK once, in the single-key form, with file mode 0600', async () => {
    const { source, logs } = await startDev();
    const file = join(stateDir, DEV_KEK_FILE_NAME);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const hex = await devKeyHex();
    expect(hex).toMatch(/^[0-9a-f]{64}$/);
    expect(source.status()).toMatchObject({ kind: 'dev', state: 'ready' });
    expect(logs.records().find((record) => record.msg === 'key source loaded its first keyring')).toMatchObject({
      created: true,
      fileMode: '0600',
    });
    expectNoKeyMaterial(logs.text(), [hex]);
    await source.stop();
  });

  it('reuses the same KEK on the next start and warns loudly at every start', async () => {
    const first = await startDev();
    const firstKekId = first.source.currentKeyring()?.current.kekId;
    const contentBefore = await readFile(join(stateDir, DEV_KEK_FILE_NAME), 'utf8');
    await first.source.stop();
    const second = await startDev();
    expect(second.source.currentKeyring()?.current.kekId).toBe(firstKekId);
    expect(await readFile(join(stateDir, DEV_KEK_FILE_NAME), 'utf8')).toBe(contentBefore);
    expect(second.logs.records().find((record) => record.msg === 'key source loaded its first keyring')).toMatchObject({
      created: false,
    });
    expect(loudWarnings(first.logs)).toHaveLength(1);
    expect(loudWarnings(second.logs)).toHaveLength(1);
    const hex = await devKeyHex();
    expectNoKeyMaterial(first.logs.text() + second.logs.text(), [hex]);
    await second.source.stop();
  });

  it('three sources starting at once end up with one key (the file is created whole, exactly once)', async () => {
    const [a, b, c] = await Promise.all([startDev(), startDev(), startDev()]);
    const ids = new Set([a, b, c].map(({ source }) => source.currentKeyring()?.current.kekId));
    expect(ids.size).toBe(1);
    expect([a, b, c].filter(({ logs }) => logs.records().some((record) => record.created === true))).toHaveLength(1);
    await Promise.all([a, b, c].map(({ source }) => source.stop()));
  });

  it('a corrupt dev key file is reported, never overwritten', async () => {
    await mkdir(stateDir, { recursive: true });
    await writeFile(join(stateDir, DEV_KEK_FILE_NAME), '{"key": "00', { mode: 0o600 });
    const { source } = await startDev();
    expect(source.status().state).toBe('failed');
    expect(source.status().lastError).toMatch(/delete the file to start over/);
    expect(await readFile(join(stateDir, DEV_KEK_FILE_NAME), 'utf8')).toBe('{"key": "00');
    await source.stop();
  });

  it('is refused in production with a clear config error', () => {
    const make = () =>
      createKeySource(
        { kind: 'dev', stateDir, production: true },
        { logger: captureLogs().logger, registry: newRegistry() },
      );
    expect(make).toThrow(KeySourceConfigError);
    expect(make).toThrow('KEY_SOURCE=dev is refused when NODE_ENV=production');
  });
});
