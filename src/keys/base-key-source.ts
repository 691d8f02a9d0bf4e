/**
 * What every key source shares, written once (the AWS Encryption SDK keyring habit: the base
 * class checks the pre- and postconditions so no source can skip them). Hooks point one way: the
 * base calls a subclass's loadKeyring / fetchMissingKek and checks what comes back; a subclass
 * never calls into the base to change its state.
 * Invariants: the installed keyring is replaced by one assignment, never edited in place; a failed
 * load never replaces or drops a good keyring (only an explicit withdrawal does); keyringFor never
 * returns a keyring that lacks the requested KEK.
 */
import type { Logger } from 'pino';
import { InvalidKekError, InvalidKeyringError, KekUnavailableError } from '../crypto/errors';
import { isKekId } from '../crypto/kek';
import { Keyring, type PendingActivation } from '../crypto/keyring';
import { needs } from '../crypto/needs';
import { KeySourceConfigError, KeySourceError, KeySourceLoadError } from './errors';
import type {
  KeyringListener,
  KeySource,
  KeySourceDeps,
  KeySourceKind,
  KeySourceState,
  KeySourceStatus,
} from './key-source';
import { CoalescedRuns } from './coalesced-runs';
import { createKeySourceMetrics, type KeySourceMetrics } from './key-source-metrics';
import { redactKeyLikeText } from './safe-text';

type Lifecycle = 'created' | 'started' | 'stopped';

/** What one load found: a keyring to install (with details for the log), or the backend's word that the keys must go. */
export interface LoadedKeyring {
  readonly keyring: Keyring;
  readonly logDetails?: Record<string, unknown>;
}
export type KeyringLoad = LoadedKeyring | { readonly withdraw: KeySourceLoadError };

export abstract class BaseKeySource implements KeySource {
  protected readonly logger: Logger;
  private readonly metrics: KeySourceMetrics;
  private readonly listeners = new Set<KeyringListener>();
  private installed: Keyring | undefined;
  private state: KeySourceState = 'loading';
  private loadedAt: Date | undefined;
  private lastError: string | undefined;
  private lifecycle: Lifecycle = 'created';
  /** One load at a time; requests that arrive meanwhile fold into one more pass. */
  private readonly loads = new CoalescedRuns(
    () => this.loadOnce(),
    () => this.stopped,
  );
  private readonly activationDelayMs: number;
  private readonly nowMs: () => number;

  protected constructor(
    readonly kind: KeySourceKind,
    deps: KeySourceDeps,
  ) {
    this.activationDelayMs = deps.kekActivationDelayMs ?? 0;
    this.nowMs = deps.nowMs ?? Date.now;
    this.logger = deps.logger.child({ component: 'key-source', keySource: kind });
    this.metrics = createKeySourceMetrics(deps.registry, kind);
    this.metrics.setState(this.state);
  }

  /**
   * One load from the backend: the keyring it holds now, or a withdrawal. Throwing is a failed
   * attempt (counted and logged here; the last good keyring stays).
   */
  protected abstract loadKeyring(): Promise<KeyringLoad>;

  /** Called once, before the first load: what the operator should see in the log. */
  protected announce(): void {}

  /** After the first load: call `reload` whenever the backend may have changed. The default never does. */
  protected watch(_reload: () => Promise<void>): void {}

  /** Ends what watch() began; the base then waits for a load in progress. */
  protected async stopWatching(): Promise<void> {}

  /**
   * Called only when the installed keyring lacks `kekId`. Sources that can fetch older keys
   * override it and return the keyring to install; the default fails closed.
   */
  protected fetchMissingKek(kekId: string, kekVersion: number | null): Promise<LoadedKeyring> {
    const held = this.installed
      ? this.installed
          .entries()
          .map((entry) => entry.kekId)
          .join(', ')
      : 'nothing (no keyring loaded)';
    const version = kekVersion === null ? '' : ` (version ${kekVersion})`;
    return Promise.reject(
      new KekUnavailableError(
        `KEK ${kekId}${version} is not held by the ${this.kind} key source; it holds ${held}`,
        kekId,
      ),
    );
  }

  async start(): Promise<void> {
    // Two starts would run two watchers or pollers racing to install keyrings.
    needs(this.lifecycle === 'created', () => new KeySourceConfigError('a key source can be started only once'));
    this.lifecycle = 'started';
    this.announce();
    await this.reload();
    // A load records its own failures; the catch keeps a bug there from becoming an unhandled
    // rejection (which would end the process) in a watcher's callback instead of a degraded source.
    if (!this.stopped) this.watch(() => this.reload().catch((error: unknown) => this.recordFailure(error)));
    if (this.installed === undefined && this.state === 'loading') {
      this.recordFailure(new KeySourceLoadError('internal', 'the first load finished without a keyring'));
    }
  }

  async stop(): Promise<void> {
    if (this.lifecycle === 'stopped') return;
    this.lifecycle = 'stopped';
    this.listeners.clear();
    await this.stopWatching();
    await this.loads.settled();
  }

  /** The installed keyring with the KEK that seals now as its current (delayed activation). */
  currentKeyring(): Keyring | undefined {
    return this.installed && this.sealingView(this.installed);
  }

  /** When the source's newest KEK is known but not active yet: which, and from when it seals. */
  pendingKek(): PendingActivation | undefined {
    return this.installed?.pendingAt(this.nowMs(), this.activationDelayMs);
  }

  private sealingView(keyring: Keyring): Keyring {
    return keyring.activeAt(this.nowMs(), this.activationDelayMs);
  }

  async keyringFor(kekId: string, kekVersion: number | null): Promise<Keyring> {
    // A KEK id read from a stored row is data: only a well-formed one may reach lookups and messages.
    needs(isKekId(kekId), () => new KekUnavailableError('the requested KEK id is malformed', '(malformed)'));
    // A version label is a KV version or keyring entry number; anything else cannot name a key.
    needs(
      kekVersion === null || (Number.isSafeInteger(kekVersion) && kekVersion > 0),
      () => new KekUnavailableError(`KEK ${kekId}: version label must be a positive integer or null`, kekId),
    );
    const cached = this.installed;
    // The common case answers from memory, so a slow or absent backend never blocks it.
    if (cached?.has(kekId)) return this.sealingView(cached);
    if (this.lifecycle === 'stopped')
      throw new KekUnavailableError(`KEK ${kekId}: the ${this.kind} key source is stopped`, kekId);
    let fetched: LoadedKeyring;
    try {
      fetched = await this.fetchMissingKek(kekId, kekVersion);
    } catch (error) {
      const unavailable =
        error instanceof KekUnavailableError
          ? error
          : new KekUnavailableError(`KEK ${kekId}: ${safeMessage(error)}`, kekId);
      this.logger.warn(
        { kekId, kekVersion, error: redactKeyLikeText(unavailable.message) },
        'a requested KEK is unavailable; failing closed',
      );
      throw unavailable;
    }
    const { keyring } = fetched;
    // Postcondition: a keyring without the KEK would send the caller on to decrypt with the wrong key.
    needs(
      keyring.has(kekId),
      () => new KekUnavailableError(`KEK ${kekId}: the ${this.kind} key source returned a keyring without it`, kekId),
    );
    // A source stopped while fetching installs nothing; its caller gets no key either.
    needs(!this.stopped, () => new KekUnavailableError(`KEK ${kekId}: the ${this.kind} key source is stopped`, kekId));
    this.installKeyring(keyring, fetched.logDetails);
    return this.sealingView(keyring);
  }

  status(): KeySourceStatus {
    const keyring = this.installed;
    return {
      kind: this.kind,
      state: this.state,
      ...(keyring ? { currentKekId: keyring.current.kekId } : {}),
      ...(this.loadedAt ? { loadedAt: this.loadedAt } : {}),
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      knownKekIds: keyring ? keyring.entries().map((entry) => entry.kekId) : [],
    };
  }

  onChange(listener: KeyringListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  protected get stopped(): boolean {
    return this.lifecycle === 'stopped';
  }

  private reload(): Promise<void> {
    return this.loads.request();
  }

  private async loadOnce(): Promise<void> {
    let load: KeyringLoad | undefined;
    try {
      load = await this.loadKeyring();
    } catch (error) {
      this.recordFailure(error);
      return;
    }
    // The hook's answer is checked, not trusted: anything but a keyring or a withdrawal is a failed load.
    if (load !== undefined && 'withdraw' in load) this.withdrawKeyring(load.withdraw);
    else if (load?.keyring instanceof Keyring) this.installKeyring(load.keyring, load.logDetails);
    else this.recordFailure(new KeySourceLoadError('internal', 'the load finished without a keyring'));
  }

  /**
   * Installs a keyring (the atomic swap) unless it equals the installed one. Old key bytes are not
   * zeroed: requests in flight may still hold the previous keyring.
   */
  private installKeyring(keyring: Keyring, logDetails: Record<string, unknown> = {}): void {
    if (this.stopped) return;
    const previous = this.installed;
    const recovered = this.state !== 'ready';
    this.lastError = undefined;
    if (previous?.sameAs(keyring)) {
      this.setState('ready');
      if (recovered)
        this.logger.info({ currentKekId: keyring.current.kekId }, 'key source recovered; keyring unchanged');
      return;
    }
    this.installed = keyring;
    this.loadedAt = new Date();
    this.setState('ready');
    this.metrics.recordReload();
    this.metrics.setCurrentKekId(keyring.current.kekId);
    this.logger.info(
      {
        currentKekId: keyring.current.kekId,
        currentVersion: keyring.current.kekVersion,
        knownKekIds: keyring.entries().map((entry) => entry.kekId),
        knownVersions: keyring.entries().map((entry) => entry.kekVersion),
        previousKekId: previous?.current.kekId ?? null,
        ...logDetails,
      },
      previous ? 'key source swapped in a new keyring' : 'key source loaded its first keyring',
    );
    for (const listener of [...this.listeners]) {
      try {
        listener(keyring);
      } catch (error) {
        this.logger.error(
          { errorName: error instanceof Error ? error.name : typeof error },
          'a keyring listener threw; the keyring stays installed',
        );
      }
    }
  }

  /** A failed attempt: counted, logged without key material; the last good keyring stays. */
  private recordFailure(error: unknown): void {
    if (this.stopped) return;
    const failure = toLoadError(error);
    const message = redactKeyLikeText(failure.message);
    this.lastError = message;
    this.metrics.recordFailure(failure.reason);
    this.setState(this.installed ? 'degraded' : 'failed');
    this.logger.error(
      { reason: failure.reason, error: message, currentKekId: this.installed?.current.kekId ?? null },
      this.installed
        ? 'key source load failed; keeping the last good keyring'
        : 'key source load failed; no keyring is loaded',
    );
  }

  /**
   * Drops the keyring on purpose: the backend says the current key must no longer be used (Vault
   * deleted or destroyed the current version). Without a keyring the service is not ready.
   */
  private withdrawKeyring(error: KeySourceLoadError): void {
    if (this.stopped) return;
    const previous = this.installed;
    if (previous) {
      this.installed = undefined;
      this.metrics.setCurrentKekId(undefined);
      this.logger.error(
        { previousKekId: previous.current.kekId },
        'key source withdrew its keyring; nothing can be encrypted or decrypted until a usable key returns',
      );
    }
    this.recordFailure(error);
  }

  private setState(next: KeySourceState): void {
    if (this.state === next) return;
    this.state = next;
    this.metrics.setState(next);
  }
}

/** Crypto and key-source messages are safe by contract; anything else is summarized by type only. */
function toLoadError(error: unknown): KeySourceLoadError {
  if (error instanceof KeySourceLoadError) return error;
  if (error instanceof InvalidKekError) return new KeySourceLoadError('invalid_key', error.message);
  if (error instanceof InvalidKeyringError) return new KeySourceLoadError('invalid_keyring', error.message);
  return new KeySourceLoadError(
    'internal',
    `unexpected ${error instanceof Error ? error.name : typeof error} while loading keys`,
  );
}

function safeMessage(error: unknown): string {
  if (error instanceof KeySourceError || error instanceof InvalidKekError || error instanceof InvalidKeyringError)
    return error.message;
  return `unexpected ${error instanceof Error ? error.name : typeof error}`;
}
