/**
 * A keyring: the KEKs a key source currently knows.
 * Invariants: exactly one KEK is current, and only the current KEK encrypts (wraps data keys);
 * any KEK present and not retired can decrypt; ids are unique. A keyring is immutable: a key
 * source replaces the whole keyring at once, so a request never sees half a rotation.
 */
import { InvalidKeyringError, KekUnavailableError } from './errors';
import type { KeyEncryptionKey } from './kek';
import { needs } from './needs';

export interface KeyringEntry extends KeyEncryptionKey {
  /** A retired KEK is still listed (for status) but refuses to decrypt. */
  readonly retired: boolean;
}

export class Keyring {
  private readonly byId: ReadonlyMap<string, KeyringEntry>;

  private constructor(
    readonly current: KeyEncryptionKey,
    entries: readonly KeyringEntry[],
  ) {
    this.byId = new Map(entries.map((entry) => [entry.kekId, entry]));
  }

  /**
   * @param keys every KEK the source holds
   * @param currentKekId the one that encrypts; it must be among `keys` and not retired
   * @param retiredKekIds KEKs that stay listed but may no longer decrypt
   */
  static create(
    keys: readonly KeyEncryptionKey[],
    currentKekId: string,
    retiredKekIds: readonly string[] = [],
  ): Keyring {
    const ids = new Set(keys.map((key) => key.kekId));
    // Two entries with one id would make "which key opened this row" ambiguous.
    needs(ids.size === keys.length, () => new InvalidKeyringError('a keyring must not hold the same KEK twice'));
    const current = keys.find((key) => key.kekId === currentKekId);
    // Exactly one current KEK: without it nothing new could be sealed.
    needs(current !== undefined, () => new InvalidKeyringError('the current KEK must be one of the keyring keys'));
    needs(!retiredKekIds.includes(currentKekId), () => new InvalidKeyringError('the current KEK cannot be retired'));
    const entries = keys.map((key) => Object.freeze({ ...key, retired: retiredKekIds.includes(key.kekId) }));
    return new Keyring(current, entries);
  }

  /** A keyring of one KEK, current (the ADR's single-key form). */
  static single(key: KeyEncryptionKey): Keyring {
    return Keyring.create([key], key.kekId);
  }

  /** The KEK that may decrypt under this id; throws when it is absent or retired (fail closed). */
  decryptionKey(kekId: string): KeyEncryptionKey {
    const entry = this.byId.get(kekId);
    needs(entry !== undefined, () => new KekUnavailableError(`KEK ${kekId} is not in the keyring`, kekId));
    needs(!entry.retired, () => new KekUnavailableError(`KEK ${kekId} is retired`, kekId));
    return entry;
  }

  has(kekId: string): boolean {
    const entry = this.byId.get(kekId);
    return entry !== undefined && !entry.retired;
  }

  /** Every entry, for status pages: ids, version labels and flags only are meant to leave. */
  entries(): readonly KeyringEntry[] {
    return [...this.byId.values()];
  }

  /** Same keys, same current, same retirement: a reload that changed nothing. */
  sameAs(other: Keyring): boolean {
    if (other.current.kekId !== this.current.kekId || other.byId.size !== this.byId.size) return false;
    for (const [kekId, entry] of this.byId) {
      const theirs = other.byId.get(kekId);
      if (!theirs || theirs.retired !== entry.retired || theirs.kekVersion !== entry.kekVersion) return false;
    }
    return true;
  }
}
