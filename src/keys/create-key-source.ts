/**
 * Chooses and builds the key source (KEY_SOURCE=file|vault|dev). The options mirror the
 * `keySource` block of src/config.ts plus `production`, so main.ts can pass
 * `{ ...config.keySource, production: config.production }` as it is.
 * Invariant: production never gets the dev source.
 */
import { needs } from '../crypto/needs';
import { DevKeySource } from './dev-key-source';
import { KeySourceConfigError } from './errors';
import { FileKeySource } from './file-key-source';
import type { KeySource, KeySourceDeps } from './key-source';
import { VaultKeySource } from './vault-key-source';

export interface DevKeySourceConfig {
  readonly kind: 'dev';
  /** PROVSEC_STATE_DIR: dev-kek.json is kept here. */
  readonly stateDir: string;
}

export interface FileKeySourceConfig {
  readonly kind: 'file';
  /** KEY_FILE (default /vault/secrets/provisioning-key). */
  readonly keyFile: string;
  /** Fallback stat poll, default 5000 ms. */
  readonly pollIntervalMs?: number;
  /** Quiet time after a change event before re-reading, default 100 ms. */
  readonly debounceMs?: number;
  /** false: poll only, default true. */
  readonly useFsWatch?: boolean;
}

export interface VaultKeySourceConfig {
  readonly kind: 'vault';
  /** VAULT_ADDR: Vault itself, or the Vault Agent's API proxy when auth is 'agent'. */
  readonly address: string;
  /** VAULT_AUTH. */
  readonly auth: 'agent' | 'kubernetes';
  /** VAULT_KV_MOUNT (kv-dev), VAULT_KV_PATH (provisioning_secret_enc_key), VAULT_KV_FIELD (key). */
  readonly kvMount: string;
  readonly kvPath: string;
  readonly kvField: string;
  /** VAULT_K8S_ROLE (required for kubernetes), VAULT_K8S_MOUNT (kubernetes), VAULT_K8S_TOKEN_FILE. */
  readonly kubernetesRole: string | undefined;
  readonly kubernetesMount: string;
  readonly kubernetesTokenFile: string;
  /** VAULT_NAMESPACE (sent as X-Vault-Namespace). */
  readonly namespace: string | undefined;
  /** VAULT_POLL_INTERVAL_MS (30000), VAULT_TIMEOUT_MS (2000, bounds every Vault call). */
  readonly pollIntervalMs: number;
  readonly timeoutMs: number;
}

export type KeySourceOptions = (DevKeySourceConfig | FileKeySourceConfig | VaultKeySourceConfig) & {
  /** NODE_ENV=production. */
  readonly production: boolean;
};

export function createKeySource(options: KeySourceOptions, deps: KeySourceDeps): KeySource {
  switch (options.kind) {
    case 'dev':
      // A generated key on local disk is a laptop convenience; in production it would be unprotected, then lost.
      needs(
        !options.production,
        () =>
          new KeySourceConfigError(
            'KEY_SOURCE=dev is refused when NODE_ENV=production: use file (the Vault Agent-rendered key file) or vault',
          ),
      );
      needs(
        options.stateDir.trim() !== '',
        () => new KeySourceConfigError('the dev key source needs a state directory (PROVSEC_STATE_DIR)'),
      );
      return new DevKeySource({ stateDir: options.stateDir }, deps);
    case 'file':
      needs(options.keyFile.trim() !== '', () => new KeySourceConfigError('the file key source needs KEY_FILE'));
      needs(
        isPositiveOrUnset(options.pollIntervalMs) && isPositiveOrUnset(options.debounceMs),
        () => new KeySourceConfigError('the key file poll interval and debounce must be positive milliseconds'),
      );
      return new FileKeySource(options, deps);
    case 'vault':
      return new VaultKeySource(vaultOptions(options), deps);
  }
}

function vaultOptions(options: VaultKeySourceConfig) {
  needs(
    /^https?:\/\/[^\s]+$/.test(options.address),
    () => new KeySourceConfigError('VAULT_ADDR must be an http(s) URL'),
  );
  // Unbounded calls would let a hung Vault hold requests; zero or negative intervals would spin.
  needs(
    Number.isInteger(options.timeoutMs) && options.timeoutMs > 0,
    () => new KeySourceConfigError('VAULT_TIMEOUT_MS must be a positive integer'),
  );
  needs(
    Number.isInteger(options.pollIntervalMs) && options.pollIntervalMs > 0,
    () => new KeySourceConfigError('VAULT_POLL_INTERVAL_MS must be a positive integer'),
  );
  needs(
    options.kvMount.trim() !== '' && options.kvPath.trim() !== '' && options.kvField.trim() !== '',
    () => new KeySourceConfigError('VAULT_KV_MOUNT, VAULT_KV_PATH and VAULT_KV_FIELD must not be empty'),
  );
  const role = options.kubernetesRole;
  needs(
    options.auth === 'agent' || (role !== undefined && role.trim() !== ''),
    () => new KeySourceConfigError('VAULT_AUTH=kubernetes needs VAULT_K8S_ROLE'),
  );
  return {
    address: options.address,
    auth:
      options.auth === 'agent'
        ? ({ mode: 'agent' } as const)
        : ({
            mode: 'kubernetes',
            role: role ?? '',
            mount: options.kubernetesMount,
            serviceAccountTokenFile: options.kubernetesTokenFile,
          } as const),
    namespace: options.namespace,
    secret: { mount: options.kvMount, path: options.kvPath, field: options.kvField },
    pollIntervalMs: options.pollIntervalMs,
    timeoutMs: options.timeoutMs,
  };
}

function isPositiveOrUnset(value: number | undefined): boolean {
  return value === undefined || (Number.isFinite(value) && value > 0);
}
