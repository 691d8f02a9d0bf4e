/**
 * Chooses and builds the key source (KEY_SOURCE=file|vault|dev) from the `keySource` block of the
 * parsed config (src/config.ts, which has validated every value) plus `production`; runtime.ts
 * passes `{ ...config.keySource, production: config.production }` as it is.
 * Invariant: production never gets the dev source.
 */
import type { DevKeySourceConfig, FileKeySourceConfig, KeySourceConfig, VaultKeySourceConfig } from '../config';
import { needs } from '../crypto/needs';
import { DevKeySource } from './dev-key-source';
import { KeySourceConfigError } from './errors';
import { FileKeySource } from './file-key-source';
import type { KeySource, KeySourceDeps } from './key-source';
import { VaultKeySource, type VaultKeySourceOptions } from './vault-key-source';

export type { DevKeySourceConfig, FileKeySourceConfig, KeySourceConfig, VaultKeySourceConfig };

export type KeySourceOptions = KeySourceConfig & {
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
      return new DevKeySource(options, deps);
    case 'file':
      return new FileKeySource(options, deps);
    case 'vault':
      return new VaultKeySource(vaultOptions(options), deps);
  }
}

/** The flat environment form, shaped as VaultKeySource takes it (auth and secret location grouped). */
function vaultOptions(options: VaultKeySourceConfig): VaultKeySourceOptions {
  return {
    address: options.address,
    auth:
      options.auth === 'agent'
        ? { mode: 'agent' }
        : {
            mode: 'kubernetes',
            role: options.kubernetesRole,
            mount: options.kubernetesMount,
            serviceAccountTokenFile: options.kubernetesTokenFile,
          },
    namespace: options.namespace,
    secret: { mount: options.kvMount, path: options.kvPath, field: options.kvField },
    pollIntervalMs: options.pollIntervalMs,
    timeoutMs: options.timeoutMs,
  };
}
