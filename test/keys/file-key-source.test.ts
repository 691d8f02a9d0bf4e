/**
 * The file key source against real files in a temp folder, while it runs: each bad render keeps
 * the last good keyring, counts a failure and logs no key material; the next good render swaps in.
 */
import { execFileSync } from 'node:child_process';
import { chmod, open, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { KekUnavailableError } from '../../src/crypto/errors';
import { importKekFromHex } from '../../src/crypto/kek';
import type { Keyring } from '../../src/crypto/keyring';
import { createKeySource } from '../../src/keys/create-key-source';
import type { KeySource } from '../../src/keys/key-source';
import {
  captureLogs,
  expectNoKeyMaterial,
  metricValue,
  newRegistry,
  randomKeyHex,
  sleep,
  waitFor,
  withTempDir,
  type CapturedLogs,
} from './support/key-test-kit';
import { toolAvailable } from '../support/external-tools';

const kekIdOf = (hex: string) => importKekFromHex(hex).kekId;
const single = (hex: string) => `${JSON.stringify({ key: hex })}\n`;

interface Running {
  source: KeySource;
  keyFile: string;
  dir: string;
  logs: CapturedLogs;
  registry: Registry;
  swaps: Keyring[];
  /** Every key written in the test, good or bad: none may show up in the logs. */
  keysUsed: string[];
}

let running: Running;
let cleanup: () => Promise<void>;

async function startWith(
  content: string | undefined,
  options: { useFsWatch?: boolean; pollIntervalMs?: number } = {},
): Promise<Running> {
  const temp = await withTempDir('keyfile');
  cleanup = temp.cleanup;
  const keyFile = join(temp.dir, 'provisioning-key');
  if (content !== undefined) await writeFile(keyFile, content, { mode: 0o640 });
  const logs = captureLogs();
  const registry = newRegistry();
  const source = createKeySource(
    {
      kind: 'file',
      keyFile,
      production: true,
      debounceMs: 20,
      pollIntervalMs: options.pollIntervalMs ?? 150,
      useFsWatch: options.useFsWatch ?? true,
    },
    { logger: logs.logger, registry },
  );
  const swaps: Keyring[] = [];
  source.onChange((keyring) => swaps.push(keyring));
  await source.start();
  running = { source, keyFile, dir: temp.dir, logs, registry, swaps, keysUsed: [] };
  return running;
}

/** The Vault Agent's way: render to a temp file in the same folder, then rename over the target. */
async function renderByRename(r: Running, content: string): Promise<void> {
  const temp = join(r.dir, `.provisioning-key.${Math.random().toString(36).slice(2)}.tmp`);
  await writeFile(temp, content, { mode: 0o640 });
  await rename(temp, r.keyFile);
}

const failures = (r: Running, reason?: string) =>
  metricValue(r.registry, 'provsec_key_source_reload_failures_total', reason ? { reason } : {});
const currentKekId = (r: Running) => r.source.currentKeyring()?.current.kekId;

async function expectBadRenderKept(
  r: Running,
  goodKekId: string,
  reason: string,
  act: () => Promise<void>,
): Promise<void> {
  const failuresBefore = await failures(r, reason);
  await act();
  await waitFor(async () => (await failures(r, reason)) > failuresBefore, `a ${reason} failure to be counted`);
  expect(currentKekId(r)).toBe(goodKekId);
  expect(r.source.status().state).toBe('degraded');
  expect(r.source.status().lastError).toBeDefined();
  const errorLines = r.logs.records().filter((record) => record.level === 50 && record.reason === reason);
  expect(errorLines.length).toBeGreaterThan(0);
  expect(errorLines.at(-1)?.msg).toMatch(/keeping the last good keyring/);
}

async function expectPickedUp(r: Running, hex: string): Promise<void> {
  await waitFor(() => currentKekId(r) === kekIdOf(hex), 'the new keyring to be installed');
  expect(r.source.status().state).toBe('ready');
  expect(r.source.status().lastError).toBeUndefined();
}

afterEach(async () => {
  await running.source.stop();
  expectNoKeyMaterial(running.logs.text(), running.keysUsed);
  await cleanup();
});

describe('file key source', () => {
  it('loads the single-key form at start, is ready, and logs the file mode in octal', async () => {
    const hex = randomKeyHex(true);
    const r = await startWith(single(hex));
    r.keysUsed.push(hex);
    expect(r.source.status()).toMatchObject({
      kind: 'file',
      state: 'ready',
      currentKekId: kekIdOf(hex),
      knownKekIds: [kekIdOf(hex)],
    });
    expect(r.source.status().loadedAt).toBeInstanceOf(Date);
    const loaded = r.logs.records().find((record) => record.msg === 'key source loaded its first keyring');
    expect(loaded).toMatchObject({ fileMode: '0640', currentKekId: kekIdOf(hex), path: r.keyFile });
    expect(await metricValue(r.registry, 'provsec_key_source_state', { state: 'ready' })).toBe(1);
    expect(await metricValue(r.registry, 'provsec_key_source_current_kek_info', { kek_id: kekIdOf(hex) })).toBe(1);
    expect(await metricValue(r.registry, 'provsec_key_source_reloads_total')).toBe(1);
  });

  it('loads a file whose mode is wide open too (mode is logged, never enforced)', async () => {
    const hex = randomKeyHex();
    const r = await startWith(single(hex));
    r.keysUsed.push(hex);
    await chmod(r.keyFile, 0o666);
    const next = randomKeyHex();
    r.keysUsed.push(next);
    await writeFile(r.keyFile, single(next));
    await expectPickedUp(r, next);
    expect(
      r.logs.records().find((record) => record.currentKekId === kekIdOf(next) && record.fileMode !== undefined)
        ?.fileMode,
    ).toBe('0666');
  });

  it('swaps in a re-render done by temp file + rename, without restart, and tells listeners', async () => {
    const first = randomKeyHex();
    const second = randomKeyHex();
    const r = await startWith(single(first));
    r.keysUsed.push(first, second);
    await renderByRename(r, single(second));
    await expectPickedUp(r, second);
    expect(r.swaps.map((keyring) => keyring.current.kekId)).toEqual([kekIdOf(first), kekIdOf(second)]);
    expect(await metricValue(r.registry, 'provsec_key_source_reloads_total')).toBe(2);
    // And a second rename still works: the watch is on the folder, not on the replaced inode.
    const third = randomKeyHex();
    r.keysUsed.push(third);
    await renderByRename(r, single(third));
    await expectPickedUp(r, third);
  });

  it('swaps in an in-place rewrite', async () => {
    const first = randomKeyHex();
    const second = randomKeyHex();
    const r = await startWith(single(first));
    r.keysUsed.push(first, second);
    await writeFile(r.keyFile, single(second));
    await expectPickedUp(r, second);
  });

  it('rides out a partial write: keeps the old keyring mid-write and picks up the finished file', async () => {
    const first = randomKeyHex();
    const second = randomKeyHex();
    const r = await startWith(single(first));
    r.keysUsed.push(first, second);
    const content = single(second);
    const handle = await open(r.keyFile, 'r+');
    await handle.truncate(0);
    await handle.write(content.slice(0, 30), 0);
    await handle.sync();
    await waitFor(async () => (await failures(r, 'invalid_json')) > 0, 'the half-written file to be rejected');
    expect(currentKekId(r)).toBe(kekIdOf(first));
    await handle.write(content.slice(30), 30);
    await handle.close();
    await expectPickedUp(r, second);
  });

  it('keeps the last good keyring when the file is truncated, then takes the next good render', async () => {
    const first = randomKeyHex();
    const r = await startWith(single(first));
    r.keysUsed.push(first);
    await expectBadRenderKept(r, kekIdOf(first), 'invalid_json', () => truncate(r.keyFile, 0));
    const next = randomKeyHex();
    r.keysUsed.push(next);
    await renderByRename(r, single(next));
    await expectPickedUp(r, next);
  });

  it('keeps the last good keyring while the file is deleted, and takes it back when it returns', async () => {
    const first = randomKeyHex();
    const r = await startWith(single(first));
    r.keysUsed.push(first);
    await expectBadRenderKept(r, kekIdOf(first), 'missing', () => rm(r.keyFile));
    expect(r.source.status().lastError).toMatch(/does not exist/);
    const next = randomKeyHex();
    r.keysUsed.push(next);
    await writeFile(r.keyFile, single(next));
    await expectPickedUp(r, next);
  });

  it('recovers to ready when the same key comes back after an absence (no swap needed)', async () => {
    const first = randomKeyHex();
    const r = await startWith(single(first));
    r.keysUsed.push(first);
    await expectBadRenderKept(r, kekIdOf(first), 'missing', () => rm(r.keyFile));
    await renderByRename(r, single(first));
    await waitFor(() => r.source.status().state === 'ready', 'the source to recover');
    // Only the first load swapped; failure reports carry ids, never keyrings (key bytes) into test output.
    expect(r.swaps.map((keyring) => keyring.current.kekId)).toEqual([kekIdOf(first)]);
  });

  it.each([
    ['garbage', () => 'this is not { a key file', 'invalid_json'],
    ['a 31-byte key', () => single(randomKeyHex().slice(0, 62)), 'invalid_key'],
    ['an all-zero key', () => single('0'.repeat(64)), 'invalid_key'],
    ['an unknown field', () => JSON.stringify({ key: randomKeyHex(), note: 'x' }), 'invalid_format'],
    [
      'a keyring whose current is missing',
      () => JSON.stringify({ current: 3, keys: { '1': randomKeyHex() } }),
      'invalid_keyring',
    ],
  ])(
    'keeps the last good keyring on %s, logs it without key material, then takes a good file',
    async (_name, badContent, reason) => {
      const first = randomKeyHex();
      const r = await startWith(single(first));
      r.keysUsed.push(first);
      const bad = badContent();
      r.keysUsed.push(...(bad.match(/[0-9a-fA-F]{62,64}/g) ?? []));
      await expectBadRenderKept(r, kekIdOf(first), reason, () => renderByRename(r, bad));
      const next = randomKeyHex();
      r.keysUsed.push(next);
      await renderByRename(r, single(next));
      await expectPickedUp(r, next);
    },
  );

  it('loads the keyring form and rotates: the new current encrypts, the previous still decrypts', async () => {
    const v1 = randomKeyHex();
    const v2 = randomKeyHex();
    const r = await startWith(JSON.stringify({ current: 1, keys: { '1': v1 } }));
    r.keysUsed.push(v1, v2);
    await renderByRename(r, JSON.stringify({ current: 2, keys: { '1': v1, '2': v2 } }));
    await expectPickedUp(r, v2);
    const keyring = r.source.currentKeyring() as Keyring;
    expect(keyring.decryptionKey(kekIdOf(v1)).kekVersion).toBe(1);
    expect(r.source.status().knownKekIds.sort()).toEqual([kekIdOf(v1), kekIdOf(v2)].sort());
    await expect(r.source.keyringFor(kekIdOf(v1), 1)).resolves.toBe(keyring);
  });

  it('moving from the single-key form to the keyring form of the same key changes nothing (same KEK id)', async () => {
    const hex = randomKeyHex();
    const r = await startWith(single(hex));
    r.keysUsed.push(hex);
    const next = randomKeyHex();
    r.keysUsed.push(next);
    await renderByRename(r, JSON.stringify({ current: 2, keys: { '1': hex.toUpperCase(), '2': next } }));
    await expectPickedUp(r, next);
    expect(r.source.currentKeyring()?.has(kekIdOf(hex))).toBe(true);
  });

  it('picks up changes by polling alone when fs.watch gives nothing', async () => {
    const first = randomKeyHex();
    const second = randomKeyHex();
    const r = await startWith(single(first), { useFsWatch: false, pollIntervalMs: 100 });
    r.keysUsed.push(first, second);
    await renderByRename(r, single(second));
    await expectPickedUp(r, second);
  });

  it('starts without a file: not ready, no throw, and becomes ready when the agent renders it', async () => {
    const r = await startWith(undefined);
    expect(r.source.status()).toMatchObject({ state: 'failed', knownKekIds: [] });
    expect(r.source.currentKeyring()).toBeUndefined();
    expect(await metricValue(r.registry, 'provsec_key_source_state', { state: 'failed' })).toBe(1);
    await expect(r.source.keyringFor(kekIdOf(randomKeyHex()), null)).rejects.toThrow(/no keyring loaded/);
    const hex = randomKeyHex();
    r.keysUsed.push(hex);
    await renderByRename(r, single(hex));
    await expectPickedUp(r, hex);
  });

  it('keyringFor answers from the keyring, fails closed for an unknown or malformed KEK id', async () => {
    const hex = randomKeyHex();
    const r = await startWith(single(hex));
    r.keysUsed.push(hex);
    await expect(r.source.keyringFor(kekIdOf(hex), null)).resolves.toBe(r.source.currentKeyring());
    const unknown = kekIdOf(randomKeyHex());
    await expect(r.source.keyringFor(unknown, 4)).rejects.toThrow(KekUnavailableError);
    await expect(r.source.keyringFor(unknown, 4)).rejects.toThrow(
      `KEK ${unknown} (version 4) is not held by the file key source`,
    );
    await expect(r.source.keyringFor('not-a-kek-id', null)).rejects.toThrow('the requested KEK id is malformed');
  });

  it('a burst of rewrites settles on the last content', async () => {
    const first = randomKeyHex();
    const r = await startWith(single(first));
    r.keysUsed.push(first);
    const keys = Array.from({ length: 10 }, () => randomKeyHex());
    r.keysUsed.push(...keys);
    for (const hex of keys) await writeFile(r.keyFile, single(hex));
    await expectPickedUp(r, keys.at(-1) as string);
    await sleep(200);
    expect(currentKekId(r)).toBe(kekIdOf(keys.at(-1) as string));
  });

  const hasOpenssl = toolAvailable('openssl', 'file-key-source: loading a KEK made by the ADR command');
  (hasOpenssl ? it : it.skip)(
    "loads a KEK made exactly as the ADR says: the key= line of 'openssl enc -aes-256-cbc -k secret -P -md sha1'",
    async () => {
      const printed = execFileSync('openssl', ['enc', '-aes-256-cbc', '-k', 'secret', '-P', '-md', 'sha1'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const keyLine = /^key=([0-9A-F]{64})$/m.exec(printed);
      expect(keyLine).not.toBeNull();
      const adrKey = (keyLine as RegExpExecArray)[1] as string;
      const first = randomKeyHex();
      const r = await startWith(single(first));
      r.keysUsed.push(first, adrKey);
      await renderByRename(r, `{\n  "key": "${adrKey}"\n}\n`);
      await expectPickedUp(r, adrKey);
    },
  );
});
