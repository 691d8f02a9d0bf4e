/** Public surface of the key sources; runtime.ts and the readiness checks import from here. */
export { createKeySource } from './create-key-source';
export type {
  DevKeySourceConfig,
  FileKeySourceConfig,
  KeySourceOptions,
  VaultKeySourceConfig,
} from './create-key-source';
export { KeySourceConfigError, KeySourceError, KeySourceLoadError } from './errors';
export type { KeySourceFailureReason } from './errors';
export type {
  KeyringListener,
  KeySource,
  KeySourceDeps,
  KeySourceKind,
  KeySourceState,
  KeySourceStatus,
} from './key-source';
export { parseKeyFile } from './key-file-format';
