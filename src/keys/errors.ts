/**
 * Key-source errors. Messages are built from our own words, config values (paths, mounts) and
 * numbers only: never from file content, Vault response bodies or parser messages, which could
 * echo key material.
 */

/** Why a load failed: a fixed set, so the failure metric's `reason` label stays bounded. */
export type KeySourceFailureReason =
  | 'missing'
  | 'unreadable'
  | 'too_large'
  | 'invalid_json'
  | 'invalid_format'
  | 'invalid_key'
  | 'invalid_keyring'
  | 'timeout'
  | 'unreachable'
  | 'sealed'
  /** 503 from a standby that finds no active node ("no active Vault instance found"): not sealed. */
  | 'standby'
  | 'forbidden'
  | 'not_found'
  | 'deleted'
  /** KV v2 destroyed the version for good (404 with data null, destroyed: true): no undelete brings it back. */
  | 'destroyed'
  | 'bad_response'
  | 'vault_error'
  | 'fingerprint_mismatch'
  | 'internal';

export abstract class KeySourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The options handed to the factory are unusable (the operator's config is wrong). */
export class KeySourceConfigError extends KeySourceError {}

/** One attempt to load keys failed; the source keeps its last good keyring. */
export class KeySourceLoadError extends KeySourceError {
  constructor(
    readonly reason: KeySourceFailureReason,
    message: string,
  ) {
    super(message);
  }
}
