/**
 * The rules the base class enforces for every source, proven with a minimal source whose behaviour
 * the test scripts. Test names repeat the precondition comments in base-key-source.ts.
 */
import { KekUnavailableError } from '../../src/crypto/errors';
import { importKekFromHex } from '../../src/crypto/kek';
import { Keyring } from '../../src/crypto/keyring';
import { BaseKeySource, type KeyringLoad, type LoadedKeyring } from '../../src/keys/base-key-source';
import { KeySourceConfigError, KeySourceLoadError } from '../../src/keys/errors';
import type { KeySourceDeps } from '../../src/keys/key-source';
import { captureLogs, expectNoKeyMaterial, metricValue, newRegistry, randomKeyHex } from './support/key-test-kit';

/** A source whose loads the test scripts: install() and fail() make the backend change, then reload as a watcher would. */
class ScriptedKeySource extends BaseKeySource {
  fetch: (kekId: string, kekVersion: number | null) => Promise<Keyring> = (kekId, kekVersion) =>
    super.fetchMissingKek(kekId, kekVersion).then((loaded) => loaded.keyring);
  private reloadNow: (() => Promise<void>) | undefined;
  constructor(
    deps: KeySourceDeps,
    private nextLoad: () => Promise<KeyringLoad>,
  ) {
    super('file', deps);
  }
  protected loadKeyring(): Promise<KeyringLoad> {
    return this.nextLoad();
  }
  protected override watch(reload: () => Promise<void>): void {
    this.reloadNow = reload;
  }
  protected override async fetchMissingKek(kekId: string, kekVersion: number | null): Promise<LoadedKeyring> {
    return { keyring: await this.fetch(kekId, kekVersion) };
  }
  install(keyring: Keyring): Promise<void> {
    this.nextLoad = () => Promise.resolve({ keyring });
    return this.reloadNow?.() ?? Promise.resolve();
  }
  fail(error: Error): Promise<void> {
    this.nextLoad = () => Promise.reject(error);
    return this.reloadNow?.() ?? Promise.resolve();
  }
}

const keyA = randomKeyHex();
const keyB = randomKeyHex();
const kekA = importKekFromHex(keyA, 1);
const kekB = importKekFromHex(keyB, 2);

/** `first`: the first load's answer (the default loads nothing at all, a source bug the base must catch). */
function make(first: () => Promise<KeyringLoad> = () => Promise.resolve(undefined as unknown as KeyringLoad)) {
  const logs = captureLogs();
  const registry = newRegistry();
  const source = new ScriptedKeySource({ logger: logs.logger, registry }, first);
  return { source, logs, registry };
}

describe('base key source', () => {
  it('starts in loading, goes ready with a keyring, and exposes ids only in status', async () => {
    const { source, registry, logs } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    expect(source.status().state).toBe('loading');
    expect(await metricValue(registry, 'provsec_key_source_state', { state: 'loading' })).toBe(1);
    await source.start();
    expect(source.status()).toMatchObject({ state: 'ready', currentKekId: kekA.kekId, knownKekIds: [kekA.kekId] });
    expect(await metricValue(registry, 'provsec_key_source_state', { state: 'ready' })).toBe(1);
    expect(await metricValue(registry, 'provsec_key_source_state', { state: 'loading' })).toBe(0);
    expect(JSON.stringify(source.status())).not.toContain(keyA);
    expectNoKeyMaterial(logs.text() + (await registry.metrics()), [keyA]);
  });

  it('two starts would run two watchers or pollers racing to install keyrings', async () => {
    const { source } = make();
    await source.start();
    await expect(source.start()).rejects.toThrow(KeySourceConfigError);
  });

  it('start never throws for an outage, and a start that loads nothing ends failed', async () => {
    const throwing = make(() => {
      throw new Error('boom');
    });
    await expect(throwing.source.start()).resolves.toBeUndefined();
    expect(throwing.source.status()).toMatchObject({
      state: 'failed',
      lastError: 'unexpected Error while loading keys',
    });
    const silent = make();
    await silent.source.start();
    expect(silent.source.status().state).toBe('failed');
  });

  it('a failure keeps the keyring (degraded), counts the reason, and a later success is ready again', async () => {
    const { source, registry } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    await source.start();
    await source.fail(new KeySourceLoadError('invalid_json', 'the key file is not valid JSON'));
    expect(source.status()).toMatchObject({
      state: 'degraded',
      currentKekId: kekA.kekId,
      lastError: 'the key file is not valid JSON',
    });
    expect(await metricValue(registry, 'provsec_key_source_reload_failures_total', { reason: 'invalid_json' })).toBe(1);
    await source.install(Keyring.single(kekB));
    expect(source.status()).toMatchObject({ state: 'ready', currentKekId: kekB.kekId });
    expect(source.status().lastError).toBeUndefined();
    expect(await metricValue(registry, 'provsec_key_source_current_kek_info', { kek_id: kekB.kekId })).toBe(1);
    expect(await metricValue(registry, 'provsec_key_source_current_kek_info', { kek_id: kekA.kekId })).toBe(0);
  });

  it('a failure message that somehow carries key-like text is redacted before it is logged or shown', async () => {
    const { source, logs } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    await source.start();
    await source.fail(
      new KeySourceLoadError('invalid_key', `oops ${keyB} and ${Buffer.from(keyB, 'hex').toString('base64')}`),
    );
    expect(source.status().lastError).toBe('oops [redacted] and [redacted]');
    expectNoKeyMaterial(logs.text(), [keyA, keyB]);
  });

  it('installing an equal keyring is not a swap (no listener call, no reload counted)', async () => {
    const { source, registry } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    await source.start();
    const calls: string[] = [];
    source.onChange((keyring) => calls.push(keyring.current.kekId));
    await source.install(Keyring.single(importKekFromHex(keyA, 1)));
    expect(calls).toEqual([]);
    expect(await metricValue(registry, 'provsec_key_source_reloads_total')).toBe(1);
  });

  it('a throwing listener neither blocks the swap nor the other listeners; unsubscribe works', async () => {
    const { source } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    await source.start();
    const seen: string[] = [];
    source.onChange(() => {
      throw new Error('listener bug');
    });
    const unsubscribe = source.onChange((keyring) => seen.push(keyring.current.kekId));
    await source.install(Keyring.single(kekB));
    expect(source.currentKeyring()?.current.kekId).toBe(kekB.kekId);
    expect(seen).toEqual([kekB.kekId]);
    unsubscribe();
    await source.install(Keyring.single(kekA));
    expect(seen).toEqual([kekB.kekId]);
  });

  it('a KEK id read from a stored row is data: only a well-formed one may reach lookups and messages', async () => {
    const { source } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    await source.start();
    await expect(source.keyringFor(`kek_${keyA}`, null)).rejects.toThrow('the requested KEK id is malformed');
    const rejection = await source.keyringFor(keyA, null).catch((error: Error) => error);
    expect(rejection).toBeInstanceOf(KekUnavailableError);
    expect((rejection as Error).message).not.toContain(keyA);
  });

  it('a version label is a KV version or keyring entry number; anything else cannot name a key', async () => {
    const { source } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    await source.start();
    for (const bad of [0, -1, 1.5, Number.NaN])
      await expect(source.keyringFor(kekB.kekId, bad)).rejects.toThrow(/version label must be a positive integer/);
  });

  it('the common case answers from memory, without asking the source', async () => {
    const { source } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    await source.start();
    let asked = 0;
    source.fetch = () => {
      asked += 1;
      return Promise.reject(new Error('must not be called'));
    };
    await expect(source.keyringFor(kekA.kekId, 99)).resolves.toBe(source.currentKeyring());
    expect(asked).toBe(0);
  });

  it('postcondition: a keyring without the KEK would send the caller on to decrypt with the wrong key', async () => {
    const { source } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    await source.start();
    source.fetch = () => Promise.resolve(Keyring.single(kekA));
    await expect(source.keyringFor(kekB.kekId, 2)).rejects.toThrow(
      `KEK ${kekB.kekId}: the file key source returned a keyring without it`,
    );
  });

  it('an unexpected error while fetching becomes KekUnavailableError without its message', async () => {
    const { source } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    await source.start();
    source.fetch = () => Promise.reject(new Error(`secret detail ${keyB}`));
    const failure = source.keyringFor(kekB.kekId, 2);
    await expect(failure).rejects.toThrow(KekUnavailableError);
    await expect(source.keyringFor(kekB.kekId, 2)).rejects.toThrow(`KEK ${kekB.kekId}: unexpected Error`);
  });

  it('after stop, nothing is installed and unknown KEKs fail closed', async () => {
    const { source } = make(() => Promise.resolve({ keyring: Keyring.single(kekA) }));
    await source.start();
    await source.stop();
    await source.install(Keyring.single(kekB));
    expect(source.currentKeyring()?.current.kekId).toBe(kekA.kekId);
    await expect(source.keyringFor(kekB.kekId, null)).rejects.toThrow(/is stopped/);
  });
});
