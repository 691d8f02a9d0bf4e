/**
 * The key-source abstraction (seed 001's pluggable SecretProvider): where the service's KEKs come
 * from. Every source hands out whole, immutable keyrings and swaps them atomically, so a request
 * sees either the keyring before a rotation or the one after, never half of one.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Keyring, PendingActivation } from '../crypto/keyring';

export const KEY_SOURCE_KINDS = ['file', 'vault', 'dev'] as const;
export type KeySourceKind = (typeof KEY_SOURCE_KINDS)[number];

/**
 * loading: the first attempt is running. ready: a keyring is loaded and the last attempt worked.
 * degraded: a keyring is loaded (and serving) but the last attempt failed. failed: no keyring.
 */
export const KEY_SOURCE_STATES = ['loading', 'ready', 'degraded', 'failed'] as const;
export type KeySourceState = (typeof KEY_SOURCE_STATES)[number];

/** What a status page or `/readyz` may show: ids and times only, never key bytes. */
export interface KeySourceStatus {
  readonly kind: KeySourceKind;
  readonly state: KeySourceState;
  readonly currentKekId?: string;
  readonly loadedAt?: Date;
  readonly lastError?: string;
  readonly knownKekIds: string[];
}

export type KeyringListener = (keyring: Keyring) => void;

export interface KeySource {
  readonly kind: KeySourceKind;
  /** Begins loading and watching; resolves after the first attempt, whether it worked or not. */
  start(): Promise<void>;
  /** The last good keyring, or undefined before the first load (or after Vault deleted the current version). */
  currentKeyring(): Keyring | undefined;
  /**
   * A keyring that can decrypt under `kekId`. Answers at once from the cached keyring; only a
   * source that can fetch older keys (vault) waits, bounded by its timeout. Throws
   * KekUnavailableError when the KEK cannot be had (fail closed).
   */
  keyringFor(kekId: string, kekVersion: number | null): Promise<Keyring>;
  status(): KeySourceStatus;
  /** The source's newest KEK while it is known but not yet active (delayed activation), else undefined. */
  pendingKek(): PendingActivation | undefined;
  /** Called after every keyring swap; returns the unsubscribe function. */
  onChange(listener: KeyringListener): () => void;
  stop(): Promise<void>;
}

/** Collaborators injected by runtime.ts (no globals). */
export interface KeySourceDeps {
  readonly logger: Logger;
  readonly registry: Registry;
  /**
   * KEK_ACTIVATION_DELAY_SECONDS in ms: a version younger than this (by its createdAt) is known
   * but does not seal yet, so replicas whose key file lags still open what others write. Default 0.
   */
  readonly kekActivationDelayMs?: number;
  /** The clock activation and the vault source's login backoff are judged by (tests inject one). Default Date.now. */
  readonly nowMs?: () => number;
}
