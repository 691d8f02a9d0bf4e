/** The device-group service's own errors; src/http/error-mappers.ts turns them into problems. */
export class DeviceGroupNotFoundError extends Error {
  override readonly name = 'DeviceGroupNotFoundError';
  constructor(readonly groupId: string) {
    super(`device group ${groupId} does not exist`);
  }
}

/** The id already holds a different secret, or a concurrent change won the race. */
export class DeviceGroupConflictError extends Error {
  override readonly name = 'DeviceGroupConflictError';
}

/** No keyring is loaded yet (or the source lost its current key): nothing can be sealed. */
export class KeyringNotLoadedError extends Error {
  override readonly name = 'KeyringNotLoadedError';
  constructor() {
    super('no key-encryption key is loaded; the service cannot store or serve secrets yet');
  }
}

/**
 * A stored envelope could not be opened: tampered, copied from another row, or its KEK is gone.
 * The server's own data is wrong, so this is a 500, never the caller's fault; `reason` is the
 * crypto error's code and is safe to log and audit.
 */
export class StoredSecretUnreadableError extends Error {
  override readonly name = 'StoredSecretUnreadableError';
  constructor(
    readonly groupId: string,
    readonly reason: string,
    detail: string,
  ) {
    super(`the stored secret of group ${groupId} cannot be opened: ${detail}`);
  }
}
