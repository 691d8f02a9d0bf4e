/**
 * The vault key source: the KEK read straight from Vault KV v2, each KV version one KEK.
 * Invariants: the current KEK is the secret's current_version; a version Vault reports deleted or
 * destroyed leaves the keyring (rows under it fail closed), and a deleted current version
 * withdraws the keyring entirely; an older version fetched for a row is kept only if its
 * fingerprint equals the row's KEK id; Vault trouble never drops a good keyring and never delays
 * a request the cached keyring can serve.
 */
import { KekUnavailableError } from '../crypto/errors';
import type { KeyEncryptionKey } from '../crypto/kek';
import { BaseKeySource, type KeyringLoad, type LoadedKeyring } from './base-key-source';
import { KeySourceLoadError } from './errors';
import type { KeySourceDeps } from './key-source';
import { keyringFromVersions } from './keyring-from-versions';
import { VaultHttp, type VaultAuth } from './vault-http';
import { readKvKek, readKvMetadata, type KvSecretLocation, type KvVersionState } from './vault-kv2';

export interface VaultKeySourceOptions {
  readonly address: string;
  readonly auth: VaultAuth;
  readonly namespace: string | undefined;
  readonly secret: KvSecretLocation;
  readonly pollIntervalMs: number;
  readonly timeoutMs: number;
}

/** Until the first keyring loads, retry at least this often (a pod should become ready quickly). */
const MAX_RETRY_BEFORE_FIRST_LOAD_MS = 5000;

export class VaultKeySource extends BaseKeySource {
  private readonly http: VaultHttp;
  /** Each live version's KV created_time, from the last metadata read (delayed activation). */
  private createdAtByVersion = new Map<number, Date>();
  /** Live versions fetched so far; together with currentVersion they make the keyring. */
  private readonly keksByVersion = new Map<number, KeyEncryptionKey>();
  private currentVersion: number | undefined;
  private readonly fetchesInFlight = new Map<number, Promise<KeyEncryptionKey>>();
  private pollTimer: NodeJS.Timeout | undefined;
  /** The base's reload, handed over by watch(). */
  private reloadNow: (() => Promise<void>) | undefined;

  constructor(
    private readonly options: VaultKeySourceOptions,
    deps: KeySourceDeps,
  ) {
    super('vault', deps);
    this.http = new VaultHttp({
      address: options.address,
      namespace: options.namespace,
      timeoutMs: options.timeoutMs,
      auth: options.auth,
      logger: this.logger,
      ...(deps.nowMs ? { nowMs: deps.nowMs } : {}),
    });
  }

  protected override announce(): void {
    this.logger.info(
      {
        address: this.options.address,
        auth: this.options.auth.mode,
        mount: this.options.secret.mount,
        path: this.options.secret.path,
        namespace: this.options.namespace ?? null,
      },
      'reading the KEK from Vault KV v2',
    );
  }

  protected override watch(reload: () => Promise<void>): void {
    this.reloadNow = reload;
    this.schedulePoll();
  }

  protected override async stopWatching(): Promise<void> {
    clearTimeout(this.pollTimer);
    await this.http.close();
  }

  private async poll(): Promise<void> {
    try {
      await this.reloadNow?.();
    } finally {
      this.schedulePoll();
    }
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    const delayMs = this.currentKeyring()
      ? this.options.pollIntervalMs
      : Math.min(this.options.pollIntervalMs, MAX_RETRY_BEFORE_FIRST_LOAD_MS);
    this.pollTimer = setTimeout(() => void this.poll(), delayMs);
    // The HTTP server keeps the process alive; a poll alone must not.
    this.pollTimer.unref();
  }

  /** One metadata read; fetches the current version when it changed; prunes versions Vault dropped. */
  protected async loadKeyring(): Promise<KeyringLoad> {
    const secret = this.options.secret;
    const metadata = await readKvMetadata(this.http, secret);
    const current = metadata.currentVersion;
    const currentState = metadata.versions.get(current);
    if (current === 0 || currentState === undefined)
      throw new KeySourceLoadError('not_found', `Vault's ${secret.mount}/${secret.path} has no current version`);
    this.pruneGoneVersions(metadata.versions);
    this.createdAtByVersion = new Map(
      [...metadata.versions].flatMap(([version, state]) =>
        state.createdAt === undefined ? [] : [[version, state.createdAt] as const],
      ),
    );
    if (currentState.deleted || currentState.destroyed) {
      this.currentVersion = undefined;
      return {
        withdraw: new KeySourceLoadError(
          currentState.destroyed ? 'destroyed' : 'deleted',
          `the current version ${current} of ${secret.mount}/${secret.path} is ${describeGone(currentState)} in Vault; no KEK will encrypt or decrypt under it (write a new version, or undelete it)`,
        ),
      };
    }
    if (!this.keksByVersion.has(current)) {
      this.keksByVersion.set(current, await this.fetchLiveVersion(current));
    }
    this.currentVersion = current;
    // An unchanged keyring is not a swap: the base only clears a degraded state for it.
    return {
      keyring: keyringFromVersions(this.keksByVersion, current, this.createdAtByVersion),
      logDetails: { vaultVersion: current },
    };
  }

  /** Drops cached versions that Vault reports deleted, destroyed, or no longer lists (max_versions). */
  private pruneGoneVersions(versions: ReadonlyMap<number, KvVersionState>): void {
    for (const [version, kek] of this.keksByVersion) {
      const state = versions.get(version);
      if (state && !state.deleted && !state.destroyed) continue;
      this.keksByVersion.delete(version);
      this.logger.warn(
        { vaultVersion: version, kekId: kek.kekId, vaultState: state ? describeGone(state) : 'removed' },
        'a KEK version is gone from Vault; it leaves the keyring and rows under it fail closed',
      );
    }
  }

  protected override async fetchMissingKek(kekId: string, kekVersion: number | null): Promise<LoadedKeyring> {
    const secret = this.options.secret;
    if (kekVersion === null)
      throw new KekUnavailableError(
        `KEK ${kekId} is not in the keyring, and the row names no Vault version to fetch`,
        kekId,
      );
    if (this.currentVersion === undefined)
      throw new KekUnavailableError(`KEK ${kekId}: the vault key source has no keyring loaded`, kekId);
    const where = `Vault version ${kekVersion} of ${secret.mount}/${secret.path}`;
    let kek = this.keksByVersion.get(kekVersion);
    if (kek === undefined) {
      try {
        kek = await this.fetchLiveVersion(kekVersion);
      } catch (error) {
        const detail = error instanceof KeySourceLoadError ? error.message : 'unexpected error';
        throw new KekUnavailableError(`KEK ${kekId}: ${where} is unavailable: ${detail}`, kekId);
      }
    }
    // A version number is only a hint stored beside the row; the key must be the one the row was sealed under.
    if (kek.kekId !== kekId)
      throw new KekUnavailableError(`KEK ${kekId}: ${where} holds a different key (${kek.kekId}); refusing it`, kekId);
    if (this.currentVersion === undefined || this.stopped)
      throw new KekUnavailableError(`KEK ${kekId}: the vault key source lost its keyring while fetching`, kekId);
    this.keksByVersion.set(kekVersion, kek);
    return {
      keyring: keyringFromVersions(this.keksByVersion, this.currentVersion, this.createdAtByVersion),
      logDetails: { vaultVersion: this.currentVersion, fetchedVaultVersion: kekVersion },
    };
  }

  /** One fetch per version at a time: a burst of rows under one old version makes one Vault call. */
  private fetchLiveVersion(version: number): Promise<KeyEncryptionKey> {
    let fetch = this.fetchesInFlight.get(version);
    if (fetch === undefined) {
      fetch = (async () => {
        const read = await readKvKek(this.http, this.options.secret, version);
        if (read.outcome === 'gone') {
          throw new KeySourceLoadError(
            read.state.destroyed ? 'destroyed' : 'deleted',
            `${this.options.secret.mount}/${this.options.secret.path} version ${version} is ${describeGone(read.state)} in Vault`,
          );
        }
        return read.kek;
      })().finally(() => this.fetchesInFlight.delete(version));
      this.fetchesInFlight.set(version, fetch);
    }
    return fetch;
  }
}

function describeGone(state: KvVersionState): string {
  return state.destroyed ? 'destroyed' : state.deleted ? 'deleted' : 'live';
}
